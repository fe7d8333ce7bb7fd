package policy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"mxguard/rules"
)

// How the rules' cost grows with their number: a site's rules file is the
// default set with the site's own rules added, up to a few thousand
// (allow and block lists kept as rules). ruleSizes are the sizes measured,
// the first being the default set alone.
var ruleSizes = []int{0, 100, 500, 2000}

// adminRules are the kinds of rules a site adds, each a template over an
// index i so that no two rules are alike: allow and block lists of
// networks and addresses, sender and From domains, SPF and DNS list
// combinations, content and score rules at every stage. None matches the
// message the benchmarks decide, so every rule of a stage is evaluated,
// as for most accepted mail.
var adminRules = []string{
	`
  - name: allow-net-%[1]d
    stage: connect
    when: in_net(client.ip, "10.%[2]d.%[3]d.0/24")
    action: accept`,
	`
  - name: block-ips-%[1]d
    stage: connect
    when: client.ip in ["203.0.%[2]d.%[3]d", "203.0.%[2]d.%[4]d", "198.51.%[3]d.%[2]d"]
    action: reject
    reply: "554 5.7.1 client ${client.ip} is blocked here"`,
	`
  - name: listed-by-%[1]d
    stage: connect
    when: '"zone%[1]d.bl.test" in dnsbl.listed'
    action: score
    score: 3`,
	`
  - name: helo-dynamic-%[1]d
    stage: helo
    when: lower(helo) endsWith ".dyn%[1]d.isp.test"
    action: score
    score: 2`,
	`
  - name: sender-blocked-%[1]d
    stage: mail
    when: mail_from.domain == "spammer%[1]d.test"
    action: reject
    reply: "550 5.7.1 mail from ${mail_from.domain} is not accepted here"`,
	`
  - name: bank-spf-%[1]d
    stage: mail
    when: spf.result == "fail" && mail_from.domain == "bank%[1]d.test"
    action: reject
    reply: "550 5.7.23 SPF fails for ${mail_from.domain}"`,
	`
  - name: rcpt-from-%[1]d
    stage: rcpt
    when: rcpt.local == "sales%[1]d" && mail_from.domain in ["list%[1]d.test", "promo%[1]d.test"]
    action: tempfail
    reply: "451 4.7.1 try again later"
    domains: [example.org]`,
	`
  - name: phish-from-%[1]d
    stage: data
    when: from.domain endsWith ".phish%[1]d.test" || from.domain == "phish%[1]d.test"
    action: quarantine`,
	`
  - name: partner-listed-%[1]d
    stage: data
    when: dnsbl.score >= 5 && from.domain == "partner%[1]d.test"
    action: score
    score: 4`,
	`
  - name: subject-%[1]d
    stage: data
    when: headers.subject contains "invoice %[1]d" && !dmarc.dkim_aligned
    action: score
    score: 2`,
	`
  - name: newsletter-%[1]d
    stage: data
    when: mail_from.domain == "news%[1]d.test" && spf.result == "pass"
    action: tag
    headers: {X-Newsletter: "news%[1]d"}`,
	`
  - name: zip-from-%[1]d
    stage: data
    when: '"zip" in mime.extensions && mail_from.domain in ["supplier%[1]d.test"]'
    action: reject
    reply: "554 5.7.1 archives from ${mail_from.domain} are refused"
    mode: monitor`,
}

// rulesFile returns the default rule set with extra admin rules before
// its own, the way a site's copy of it grows.
func rulesFile(extra int) []byte {
	var b strings.Builder
	for i := range extra {
		t := adminRules[i%len(adminRules)]
		fmt.Fprintf(&b, t, i, i%250+1, i/250+1, (i*7)%250+1)
		b.WriteByte('\n')
	}
	src := string(rules.Default)
	at := strings.Index(src, "\nrules:\n") + len("\nrules:\n")
	return []byte(src[:at] + b.String() + src[at:])
}

// ruleCount names a size by the rules it holds.
func ruleCount(b testing.TB, data []byte) int {
	b.Helper()
	set, err := rules.Parse("bench.yaml", data, RulesOptions())
	if err != nil {
		b.Fatal(err)
	}
	return len(set.Rules)
}

// BenchmarkRulesLoad is what serve does with a rules file when it starts
// and at each reload: read, parse, type-check and compile every
// condition, and work out which checks each stage runs.
func BenchmarkRulesLoad(b *testing.B) {
	opts := RulesOptions()
	for _, extra := range ruleSizes {
		data := rulesFile(extra)
		path := filepath.Join(b.TempDir(), "rules.yaml")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			b.Fatal(err)
		}
		n := ruleCount(b, data)
		e := NewEngine(Options{Domains: []string{"example.org"}})
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			cpu := loop(b, func() {
				set, err := rules.LoadFiles([]string{path}, opts)
				if err != nil {
					b.Fatal(err)
				}
				e.Reload([]string{"example.org"}, set)
			})
			b.ReportMetric(cpu/float64(n), "cpu-ns/rule")
		})
	}
}

// BenchmarkRulesDecide is one message's decisions, connect to data, with
// one recipient, as a session makes them: facts built, checks that need
// no DNS run (their results memoised per transaction), every rule of
// each stage evaluated. Nothing matches, so the message is accepted.
func BenchmarkRulesDecide(b *testing.B) {
	for _, extra := range ruleSizes {
		data := rulesFile(extra)
		set, err := rules.Parse("bench.yaml", data, RulesOptions())
		if err != nil {
			b.Fatal(err)
		}
		e := NewEngine(Options{Domains: []string{"example.org"}, Rules: set,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		b.Run(fmt.Sprintf("rules=%d", len(set.Rules)), func(b *testing.B) {
			loop(b, func() { decideMessage(b, e) })
		})
	}
}

// decideMessage walks one accepted message through every stage.
func decideMessage(b *testing.B, e *Engine) {
	s := e.NewSession()
	client := Client{Addr: netip.MustParseAddrPort("192.0.2.7:4000"), HELO: "mail.sender.test", ESMTP: true}
	newTx := func(Stage) *Transaction {
		return &Transaction{Session: "S1", ID: "S1.1", Client: client, MailFrom: "a@sender.test"}
	}
	var mail *Transaction
	r := s.Walk(context.Background(), Walk{
		Tx: func(st Stage) *Transaction {
			tx := newTx(st)
			if st == StageMail {
				mail = tx
			}
			return tx
		},
		Rcpts: []string{"user@example.org"},
		Content: func(tx *Transaction) (Verdict, bool) {
			tx.Size = 4096
			tx.Content = benchMessage
			return Verdict{}, false
		},
	})
	if r.Stage != StageData || r.Verdict.Action != ActionAccept || r.Tx != mail {
		b.Fatalf("stopped at %v with %+v", r.Stage, r.Verdict)
	}
}

// benchMessage is a plain, well-formed message.
const benchMessage = staticContent("From: a@sender.test\r\nTo: user@example.org\r\nDate: Wed, 25 Nov 2026 10:00:00 +0000\r\nMessage-ID: <b@sender.test>\r\nSubject: s\r\n\r\nbody\r\n")

// BenchmarkRulesEvalStage is the rule set alone at each stage, for the
// facts of an accepted message: what each rule of a stage costs, and what
// the rules of the other stages cost it.
func BenchmarkRulesEvalStage(b *testing.B) {
	tx := testTx()
	tx.Rcpt = "user@example.org"
	for _, c := range []string{"dnsbl", "spf", "dkim", "headers", "dmarc"} {
		tx.Checks[c] = CheckRecord{Result: "pass"}
	}
	for _, extra := range ruleSizes {
		set, err := rules.Parse("bench.yaml", rulesFile(extra), RulesOptions())
		if err != nil {
			b.Fatal(err)
		}
		for _, stage := range []Stage{StageConnect, StageHelo, StageMail, StageRcpt, StageData} {
			inStage := 0
			for _, r := range set.Rules {
				if r.Stage == stage.String() {
					inStage++
				}
			}
			f := tx.factsFor(stage)
			domains := []string{"example.org"}
			b.Run(fmt.Sprintf("rules=%d/%s=%d", len(set.Rules), stage, inStage), func(b *testing.B) {
				loop(b, func() {
					if out := set.Eval(stage.String(), f, domains); out.Decisive != nil || len(out.Errors) > 0 {
						b.Fatal(out.Decisive, out.Errors)
					}
				})
			})
		}
	}
}

// loop runs op as the benchmark's body and reports, besides the wall
// time, the process's CPU time per op (user and system, the collector's
// included): on a machine shared with other work the wall time grows
// with what the others take, the CPU time much less. It returns that
// CPU time in nanoseconds.
func loop(b *testing.B, op func()) float64 {
	b.ReportAllocs()
	t0 := cpuTime(b)
	for b.Loop() {
		op()
	}
	cpu := float64(cpuTime(b)-t0) / float64(b.N)
	b.ReportMetric(cpu, "cpu-ns/op")
	return cpu
}

// cpuTime is the CPU time the process has used, every thread's.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// The generated files are what the benchmarks say they are: they load,
// hold the number of rules asked for, and decide the benchmark's message
// as accepted with no rule matched, so every rule is evaluated.
func TestRulesFileForBenchmarks(t *testing.T) {
	def := ruleCount(t, rulesFile(0))
	for _, extra := range []int{0, len(adminRules), 2000} {
		data := rulesFile(extra)
		if got := ruleCount(t, data); got != def+extra {
			t.Fatalf("rulesFile(%d): %d rules, want %d", extra, got, def+extra)
		}
		set, _ := rules.Parse("bench.yaml", data, RulesOptions())
		e := NewEngine(Options{Domains: []string{"example.org"}, Rules: set})
		s := e.NewSession()
		client := Client{Addr: netip.MustParseAddrPort("192.0.2.7:4000"), HELO: "mail.sender.test", ESMTP: true}
		r := s.Walk(context.Background(), Walk{
			Tx: func(Stage) *Transaction {
				return &Transaction{Session: "S1", ID: "S1.1", Client: client, MailFrom: "a@sender.test"}
			},
			Rcpts: []string{"user@example.org"},
			Content: func(tx *Transaction) (Verdict, bool) {
				tx.Size, tx.Content = 4096, benchMessage
				return Verdict{}, false
			},
		})
		if r.Stage != StageData || r.Verdict.Action != ActionAccept || len(r.Tx.Matches) != 0 {
			t.Errorf("rulesFile(%d): stage %v, verdict %+v, matches %+v", extra, r.Stage, r.Verdict, r.Tx.Matches)
		}
	}
}

// BenchmarkRulesBlockList is a block list of senders kept as rules, one
// rule a domain, against the same list in one rule's literal list, which
// the compiler turns into a set: the first costs a condition per entry,
// the second one lookup.
func BenchmarkRulesBlockList(b *testing.B) {
	tx := testTx()
	f := tx.factsFor(StageMail)
	for _, n := range []int{10, 100, 1000} {
		var each, one strings.Builder
		each.WriteString("rules:\n")
		one.WriteString("rules:\n  - name: blocked-senders\n    stage: mail\n    when: mail_from.domain in [")
		for i := range n {
			fmt.Fprintf(&each, "  - name: blocked-%d\n    stage: mail\n    when: mail_from.domain == \"spammer%d.test\"\n    action: reject\n", i, i)
			if i > 0 {
				one.WriteString(", ")
			}
			fmt.Fprintf(&one, "\"spammer%d.test\"", i)
		}
		one.WriteString("]\n    action: reject\n")
		for _, c := range []struct{ name, src string }{{"rule-each", each.String()}, {"one-rule", one.String()}} {
			set, err := rules.Parse("list.yaml", []byte(c.src), RulesOptions())
			if err != nil {
				b.Fatal(err)
			}
			b.Run(fmt.Sprintf("domains=%d/%s", n, c.name), func(b *testing.B) {
				loop(b, func() {
					if out := set.Eval("mail", f, nil); out.Decisive != nil || len(out.Errors) > 0 {
						b.Fatal(out.Decisive, out.Errors)
					}
				})
			})
		}
	}
}
