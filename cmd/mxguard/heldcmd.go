package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"mxguard/config"
	"mxguard/held"
	"mxguard/policy"
)

const heldUsage = `usage: mxguard held list    [--config FILE] [filters] [--json]
       mxguard held show    [--config FILE] ID
       mxguard held release [--config FILE] [--by NAME] [--force] ID...
       mxguard held delete  [--config FILE] [--by NAME] ID...

Lists, shows, releases and deletes the mail that rules with the hold
action kept in hold.dir. list and show read the directory; release asks
the running mxguard serve, through hold.dir/control.sock, to deliver the
message to the backend with its original envelope and records who
released it in the verdict log; delete goes through the server too when
one runs. A release that mxguard did not see end (it stopped during the
delivery) leaves the message "possibly-delivered": only --force sends it
again, with the same X-Mxguard-Release-Id header for the backend to drop
the duplicate.

list shows the newest first. Filters: --since, --until (as for "mxguard
verdicts": RFC 3339, a date, or a duration back from now), --from, --rcpt
(contains, any case), --rule, --session (id prefix), --state (held,
releasing, possibly-delivered, released).

show prints the metadata and the header section, with every byte that is
not printable ASCII escaped; never the body.

Exit status: 0 done, 1 failure (no such message, released already, the
backend refused, no server for a release), 2 bad usage or configuration.

`

func cmdHeld(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, heldUsage)
		return exitUsage
	}
	sub := args[0]
	switch sub {
	case "-h", "--help", "-help", "help":
		fmt.Fprint(stdout, heldUsage)
		return exitOK
	case "list", "show", "release", "delete":
	default:
		fmt.Fprintf(stderr, "mxguard held: unknown subcommand %q\n\n%s", sub, heldUsage)
		return exitUsage
	}
	fs := flag.NewFlagSet("held "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", defaultConfig, "configuration `file`")
	var f held.Filter
	asJSON, force, by := new(bool), new(bool), new(string)
	now := time.Now()
	switch sub {
	case "list":
		timeFlag := func(dst *time.Time) func(string) error {
			return func(s string) (err error) { *dst, err = policy.ParseVerdictTime(s, now); return err }
		}
		fs.Func("since", "only messages held at or after `T`", timeFlag(&f.Since))
		fs.Func("until", "only messages held before `T`", timeFlag(&f.Until))
		fs.StringVar(&f.From, "from", "", "only messages whose sender contains `S` (any case; <> is the null sender)")
		fs.StringVar(&f.Rcpt, "rcpt", "", "only messages with a recipient containing `R` (any case)")
		fs.StringVar(&f.Rule, "rule", "", "only messages held by rule `R`, or where it matched")
		fs.StringVar(&f.Session, "session", "", "only messages whose session or transaction id starts with `ID`")
		fs.Func("state", "only messages in state `S[,S...]`", func(s string) error {
			for st := range strings.SplitSeq(s, ",") {
				switch held.State(st) {
				case held.StateHeld, held.StateReleasing, held.StatePossiblyDelivered, held.StateReleased:
					f.States = append(f.States, held.State(st))
				default:
					return fmt.Errorf("unknown state %q", st)
				}
			}
			return nil
		})
		asJSON = fs.Bool("json", false, "print each message's metadata as one JSON line")
	case "release", "delete":
		by = fs.String("by", defaultAdmin(), "who does it, for the verdict log (`NAME`)")
		if sub == "release" {
			force = fs.Bool("force", false, "release a message that was possibly delivered already")
		}
	}
	fs.Usage = func() { fmt.Fprint(stderr, heldUsage); fs.PrintDefaults() }
	ids, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return usageExit(err)
	}
	switch {
	case sub == "list" && len(ids) == 0:
	case sub == "show" && len(ids) == 1, (sub == "release" || sub == "delete") && len(ids) > 0:
	default:
		fs.Usage()
		return exitUsage
	}
	if *by == "" && sub != "list" && sub != "show" {
		fmt.Fprintln(stderr, "mxguard held: --by: who releases or deletes must be named")
		return exitUsage
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	dir := cfg.Hold.Dir
	switch sub {
	case "list":
		return heldList(held.OpenReader(dir), f, *asJSON, stdout, stderr)
	case "show":
		return heldShow(held.OpenReader(dir), ids[0], stdout, stderr)
	}
	code := exitOK
	for _, id := range ids {
		var c int
		if sub == "release" {
			c = heldRelease(dir, id, *by, *force, stdout, stderr)
		} else {
			c = heldDelete(cfg, id, *by, stdout, stderr)
		}
		code = max(code, c)
	}
	return code
}

// defaultAdmin is who an admin's command acts for when --by is not given:
// the Unix user that runs it.
func defaultAdmin() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return os.Getenv("USER")
}

func heldList(st *held.Store, f held.Filter, asJSON bool, stdout, stderr io.Writer) int {
	list, err := st.List(f)
	if err != nil {
		fmt.Fprintln(stderr, "mxguard held:", err)
		return exitFailed
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		for _, m := range list {
			_ = enc.Encode(m)
		}
		return exitOK
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tHELD\tSTATE\tFROM\tRCPTS\tSIZE\tRULE\tSESSION")
	for _, m := range list {
		from := m.MailFrom
		if from == "" {
			from = "<>"
		}
		rcpts := ""
		if len(m.Rcpts) > 0 {
			rcpts = m.Rcpts[0]
			if len(m.Rcpts) > 1 {
				rcpts += fmt.Sprintf(" +%d", len(m.Rcpts)-1)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", m.ID, m.Received.Local().Format(time.DateTime), m.State,
			printable(from), printable(rcpts), m.Size, m.Verdict.Rule, m.Session)
	}
	_ = tw.Flush()
	return exitOK
}

// maxShownHeader bounds the header section show prints.
const maxShownHeader = 256 << 10

func heldShow(st *held.Store, id string, stdout, stderr io.Writer) int {
	m, err := st.Get(id)
	if err != nil {
		fmt.Fprintln(stderr, "mxguard held:", err)
		return exitFailed
	}
	w := bufio.NewWriter(stdout)
	defer w.Flush()
	from := m.MailFrom
	if from == "" {
		from = "<>"
	}
	fmt.Fprintf(w, "id:         %s\nstate:      %s\nheld:       %s\nsession:    %s (tx %s)\n", m.ID, m.State, m.Received.Format(time.RFC3339), m.Session, m.Tx)
	fmt.Fprintf(w, "client:     %s port %d, helo %s, ptr %s, tls %t\n", m.Client.IP, m.Client.Port, printable(m.Client.HELO), printable(m.Client.PTR), m.Client.TLS)
	params := ""
	if m.SMTPUTF8 {
		params += " SMTPUTF8"
	}
	if m.Body8Bit {
		params += " BODY=8BITMIME"
	}
	fmt.Fprintf(w, "mail from:  <%s>%s\n", printable(m.MailFrom), params)
	for _, r := range m.Rcpts {
		fmt.Fprintf(w, "rcpt to:    <%s>\n", printable(r))
	}
	fmt.Fprintf(w, "size:       %d\nrule:       %s (score %g; matched: %s)\n", m.Size, m.Verdict.Rule, m.Verdict.Score, strings.Join(m.Verdict.Rules, ", "))
	for _, a := range m.Attempts {
		end := "not ended"
		if !a.Ended.IsZero() {
			end = a.Ended.Format(time.RFC3339)
		}
		forced := ""
		if a.Forced {
			forced = ", forced"
		}
		fmt.Fprintf(w, "release:    by %s at %s%s, ended %s, delivered %t: %s\n", printable(a.By), a.Started.Format(time.RFC3339), forced, end, a.Delivered, printable(a.Reply))
	}
	fmt.Fprintln(w, "\nheaders:")
	c, err := st.Content(id)
	if err != nil {
		w.Flush()
		fmt.Fprintln(stderr, "mxguard held:", err)
		return exitFailed
	}
	defer c.Close()
	r := bufio.NewReader(io.LimitReader(c, maxShownHeader))
	for {
		line, err := r.ReadString('\n')
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			break // the end of the header section, or of what is shown
		}
		fmt.Fprintln(w, "  "+printable(line))
		if err != nil {
			break
		}
	}
	return exitOK
}

// printable escapes every byte of s that is not printable ASCII (or a
// tab), so that hostile text (a Subject with terminal escapes) is shown,
// never acted on by the admin's terminal.
func printable(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			b.WriteString(`\\`)
		case c == '\t' || c >= 0x20 && c < 0x7f:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, `\x%02x`, c)
		}
	}
	return b.String()
}

// heldClient talks to the running serve over hold.dir/control.sock.
type heldClient struct{ http *http.Client }

// dialHeld connects to the held-mail control socket in dir; ok is false
// when no server listens there.
func dialHeld(dir string) (*heldClient, bool) {
	path := filepath.Join(dir, controlSocket)
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return nil, false
	}
	c.Close()
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}
	return &heldClient{http: &http.Client{Transport: tr, Timeout: heldReplyTimeout}}, true
}

func (c *heldClient) post(path string, q map[string]string) (heldReply, error) {
	vals := url.Values{}
	for k, v := range q {
		vals.Set(k, v)
	}
	resp, err := c.http.Post("http://mxguard"+path+"?"+vals.Encode(), "", nil)
	if err != nil {
		return heldReply{}, fmt.Errorf("control socket: %w", err)
	}
	defer resp.Body.Close()
	var r heldReply
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err := json.Unmarshal(body, &r); err != nil || r.Code == "" {
		return heldReply{}, fmt.Errorf("control socket: %s: %s", resp.Status, bytes.TrimSpace(body))
	}
	return r, nil
}

func heldRelease(dir, id, by string, force bool, stdout, stderr io.Writer) int {
	c, ok := dialHeld(dir)
	if !ok {
		fmt.Fprintf(stderr, "mxguard held: no mxguard serve answers on %s: a release goes through the running server (its backend and verdict log); nothing was sent\n",
			filepath.Join(dir, controlSocket))
		return exitFailed
	}
	q := map[string]string{"id": id, "by": by}
	if force {
		q["force"] = "1"
	}
	r, err := c.post("/v1/held/release", q)
	if err != nil {
		fmt.Fprintln(stderr, "mxguard held:", err)
		return exitFailed
	}
	switch r.Code {
	case "released":
		a := r.Held.LastAttempt()
		fmt.Fprintf(stdout, "released %s to %d recipients: %s\n", id, len(r.Held.Rcpts), printable(a.Reply))
		return exitOK
	case "refused":
		fmt.Fprintf(stderr, "mxguard held: the backend refused %s: %s; it stays %s\n", id, printable(r.Held.LastAttempt().Reply), r.Held.State)
	case "unknown":
		fmt.Fprintf(stderr, "mxguard held: the backend had all of %s but mxguard did not get its reply (%s): it is possibly delivered. --force sends it again, with the same X-Mxguard-Release-Id: %s header for the backend to drop a duplicate\n",
			id, printable(r.Held.LastAttempt().Reply), id)
	case "released-already":
		a := r.Held.LastAttempt()
		fmt.Fprintf(stderr, "mxguard held: %s was released already, by %s at %s (%s); nothing was sent\n", id, printable(a.By), a.Ended.Format(time.RFC3339), printable(a.Reply))
	case "possibly-delivered":
		fmt.Fprintf(stderr, "mxguard held: %s is possibly delivered: mxguard stopped during its release by %s; nothing was sent. --force sends it again, with the same %s: %s header for the backend to drop a duplicate\n",
			id, printable(r.Held.LastAttempt().By), "X-Mxguard-Release-Id", id)
	default:
		fmt.Fprintln(stderr, "mxguard held:", r.Error)
	}
	return exitFailed
}

func heldDelete(cfg *config.Config, id, by string, stdout, stderr io.Writer) int {
	if c, ok := dialHeld(cfg.Hold.Dir); ok {
		r, err := c.post("/v1/held/delete", map[string]string{"id": id, "by": by})
		if err != nil {
			fmt.Fprintln(stderr, "mxguard held:", err)
			return exitFailed
		}
		if r.Code != "deleted" {
			fmt.Fprintln(stderr, "mxguard held:", r.Error)
			return exitFailed
		}
		fmt.Fprintf(stdout, "deleted %s\n", id)
		return exitOK
	}
	// No server: this process takes the store's lock, deletes, and
	// appends the audit line to the verdict log itself.
	if _, err := os.Stat(cfg.Hold.Dir); err != nil {
		fmt.Fprintf(stderr, "mxguard held: %v\n", err)
		return exitFailed
	}
	st, err := held.Open(held.Options{Dir: cfg.Hold.Dir, Keep: cfg.Hold.Keep.Duration, MaxBytes: int64(cfg.Hold.MaxBytes)})
	if err != nil {
		if errors.Is(err, held.ErrLocked) {
			err = fmt.Errorf("%w, but nothing answers on %s", err, filepath.Join(cfg.Hold.Dir, controlSocket))
		}
		fmt.Fprintln(stderr, "mxguard held:", err)
		return exitFailed
	}
	defer st.Close()
	m, err := st.Delete(id)
	if err != nil {
		fmt.Fprintln(stderr, "mxguard held:", err)
		return exitFailed
	}
	if cfg.VerdictLog != "" && cfg.VerdictLog != "-" {
		vl, err := policy.OpenVerdictLog(cfg.VerdictLog)
		if err == nil {
			err = vl.Write(heldRecord(m, policy.ActionDelete, by, ""))
			_ = vl.Close()
		}
		if err != nil {
			fmt.Fprintln(stderr, "mxguard held: deleted, but the verdict log:", err)
		}
	}
	fmt.Fprintf(stdout, "deleted %s\n", id)
	return exitOK
}
