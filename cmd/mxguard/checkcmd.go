package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"

	"mxguard/checks/rcpt"
	"mxguard/config"
	"mxguard/policy"
	"mxguard/proxy"
)

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func cmdCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "configuration `file` whose rules and domains to use (default: the built-in rules, and the recipients' domains as local)")
	clientIP := fs.String("client-ip", "192.0.2.1", "the client's `IP` address")
	helo := fs.String("helo", "client.example.net", "the `name` the client gave in EHLO")
	from := fs.String("mail-from", "", "the envelope sender `address` (\"\" for <>)")
	var rcpts stringList
	fs.Var(&rcpts, "rcpt", "a recipient `address` (repeatable)")
	tlsOn := fs.Bool("tls", false, "decide as if the client had used STARTTLS")
	asJSON := fs.Bool("json", false, "print the verdict line the verdict log would get")
	dnsFlag := fs.String("dns", "", "DNS `servers` to ask, host:port, comma-separated (default: the config's dns.servers, else /etc/resolv.conf)")
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: mxguard check [--config F] --client-ip IP --helo NAME --mail-from ADDR --rcpt ADDR [--json] MESSAGE.eml\n\n"+
			"Runs a stored message through the same pipeline as serve, stage by stage,\n"+
			"and explains the verdict: every check with its result, every rule that\n"+
			"matched, the final action and the reply. Nothing is delivered.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return usageExit(err)
	}
	if fs.NArg() != 1 || len(rcpts) == 0 {
		fs.Usage()
		return exitUsage
	}
	ip, err := netip.ParseAddr(*clientIP)
	if err != nil {
		fmt.Fprintf(stderr, "mxguard check: --client-ip: %v\n", err)
		return exitUsage
	}
	cfg := config.Default()
	if *cfgPath != "" {
		if cfg, err = config.Load(*cfgPath); err != nil {
			fmt.Fprintln(stderr, err)
			return exitUsage
		}
	} else {
		for _, r := range rcpts {
			cfg.Domains = append(cfg.Domains, policy.Domain(r))
		}
		// Our name is the authserv-id of the Authentication-Results
		// header; without a config it is this machine's, as an MTA's
		// default name is.
		if cfg.Hostname, err = os.Hostname(); err != nil || cfg.Hostname == "" {
			cfg.Hostname = "localhost"
		}
	}
	dnsFrom := "dns.servers"
	switch {
	case *dnsFlag != "":
		cfg.DNS.Servers, dnsFrom = strings.Split(*dnsFlag, ","), "--dns"
	case len(cfg.DNS.Servers) == 0:
		dnsFrom = "/etc/resolv.conf"
	}
	set, err := loadRules(cfg)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		fmt.Fprintln(stderr, "mxguard check:", err)
		return exitFailed
	}
	defer f.Close()
	msg, facts, err := proxy.LoadMessage(f, &proxy.Spool{Dir: cfg.Spool.Dir, Threshold: int(cfg.Spool.MemoryThreshold)}, int64(cfg.Limits.MaxMessageBytes))
	if err != nil {
		fmt.Fprintf(stderr, "mxguard check: %s: %v\n", fs.Arg(0), err)
		return exitFailed
	}
	defer msg.Close()

	res, err := newResolver(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "mxguard check:", err)
		return exitFailed
	}
	// The answers depend on whom we ask: say so, beside the verdict.
	fmt.Fprintf(stderr, "mxguard check: DNS from %s (%s)\n", strings.Join(res.Servers(), ", "), dnsFrom)
	var verifier *rcpt.Verifier
	if network, addr := cfg.Backend.Kind(); network != "builtin" {
		if verifier, err = newVerifier(cfg, network, addr); err != nil {
			fmt.Fprintln(stderr, "mxguard check:", err)
			return exitFailed
		}
		if verifier != nil {
			defer verifier.Close()
		}
	}
	eng := policy.NewEngine(policy.Options{Domains: cfg.Domains, Rules: set, Resolver: res, Hostname: cfg.Hostname,
		AuthResults: cfg.AuthenticationResults, Sections: checkSections(cfg), Recipients: verifier})
	sess := eng.NewSession()
	client := policy.Client{Addr: netip.AddrPortFrom(ip, 25), HELO: *helo, ESMTP: true}
	if *tlsOn {
		client.TLS = &policy.TLSInfo{Version: "TLS 1.3", CipherSuite: "TLS_AES_128_GCM_SHA256"}
	}
	newTx := func() *policy.Transaction {
		return &policy.Transaction{Session: "CHECK", ID: "CHECK.1", Start: time.Now(), Client: client}
	}
	ctx := context.Background()
	var lines []string
	step := func(stage policy.Stage, what string, v policy.Verdict) {
		res := v.Action.String()
		if v.Action.Refuses() {
			res += "  " + v.Reply.String()
		}
		lines = append(lines, fmt.Sprintf("  %-8s %-28s %s", stage, what, res))
	}
	final := func(tx *policy.Transaction, stage policy.Stage, v policy.Verdict) int {
		step(stage, "", v)
		o := policy.Outcome{Stage: stage, Action: v.Action.String(), Reason: v.Reason, Reply: v.Reply.String()}
		if v.Action == policy.ActionHold {
			o.Reply = "(250, held in hold.dir)"
		} else if !v.Action.Refuses() {
			o.Reply = "(the backend's reply)"
		}
		tree := func(w io.Writer, rec *policy.Record) {
			printMIMETree(w, rec, cfg, msg.Reader)
			printURLs(w, cfg, res, msg.Reader)
			printRspamd(w, rec)
		}
		return explain(stdout, tx, o, lines, set == nil, *asJSON, tree)
	}
	r := sess.Walk(ctx, policy.Walk{
		Tx: func(stage policy.Stage) *policy.Transaction {
			tx := newTx()
			if stage == policy.StageMail {
				tx.MailFrom = *from
			}
			return tx
		},
		Rcpts: rcpts,
		Content: func(tx *policy.Transaction) (policy.Verdict, bool) {
			tx.Size, tx.Protocol, tx.Content = msg.Size(), facts, msg
			if _, err := tx.HeaderSplit(); err != nil {
				// serve refuses it before any rule: so does check.
				return proxy.HeaderTooBig(tx.Session), true
			}
			tx.MessageID = proxy.MessageID(tx.Header())
			return policy.Verdict{}, false
		},
		Step: func(stage policy.Stage, what string, v policy.Verdict) { step(stage, what, v) },
	})
	if r.Stage != policy.StageData {
		// The refusal that ended the walk is the verdict: final says it.
		lines = lines[:len(lines)-1]
	}
	return final(r.Tx, r.Stage, r.Verdict)
}

// explain prints how the pipeline decided, or the verdict line with --json.
// tree prints the MIME tree, the URLs and the scanners' answers.
func explain(w io.Writer, tx *policy.Transaction, o policy.Outcome, stages []string, builtin, asJSON bool,
	tree func(io.Writer, *policy.Record)) int {
	rec := policy.NewRecord(tx, o, time.Now())
	if asJSON {
		b, _ := json.Marshal(rec)
		fmt.Fprintf(w, "%s\n", b)
		return exitOK
	}
	src := "the built-in default rules"
	if !builtin {
		src = "the configured rules"
	}
	fmt.Fprintf(w, "stages (with %s):\n%s\n", src, strings.Join(stages, "\n"))
	fmt.Fprintln(w, "checks:")
	if len(rec.Checks) == 0 {
		fmt.Fprintln(w, "  (none ran: no rule needs one)")
	}
	for name, c := range rec.Checks {
		fmt.Fprintf(w, "  %-10s %-10s %s (%.1f ms)\n", name, c.Result, c.Detail, c.DurationMS)
	}
	fmt.Fprintln(w, "rules matched:")
	if len(rec.Rules) == 0 {
		fmt.Fprintln(w, "  (none)")
	}
	for _, m := range rec.Rules {
		extra := ""
		if m.Mode == "monitor" {
			extra = "  (monitor: logged, not enforced)"
		}
		if m.Score != 0 {
			extra += fmt.Sprintf("  score %+g", m.Score)
		}
		fmt.Fprintf(w, "  %-24s %-6s %-10s%s\n", m.Name, m.Stage, m.Action, extra)
	}
	tree(w, rec)
	if rec.Score != 0 {
		fmt.Fprintf(w, "score: %g\n", rec.Score)
	}
	for _, h := range tx.Headers {
		fmt.Fprintf(w, "adds header: %s: %s\n", h.Name, h.Value)
	}
	fmt.Fprintf(w, "final: %s at %s", rec.Action, rec.Stage)
	if rec.Reason != "" {
		fmt.Fprintf(w, " (%s)", rec.Reason)
	}
	fmt.Fprintf(w, ": %s\n", rec.Reply)
	return exitOK
}
