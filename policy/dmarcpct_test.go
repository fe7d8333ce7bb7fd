package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"mxguard/checks/dmarc"
	"mxguard/checks/resolver"
	"mxguard/checks/resolver/dnstest"
)

// pctZone publishes p=reject with pct 0, 50 and 100 (RFC 7489 §6.6.4).
const pctZone = `$ORIGIN test.
$TTL 300
@                    IN SOA ns.test. hostmaster.test. 1 3600 600 86400 300
_dmarc.pct0.test.    IN TXT "v=DMARC1; p=reject; pct=0"
_dmarc.pct50.test.   IN TXT "v=DMARC1; p=reject; pct=50"
_dmarc.full.test.    IN TXT "v=DMARC1; p=reject"
_dmarc.q0.test.      IN TXT "v=DMARC1; p=quarantine; pct=0"
`

// decideDMARC runs a message From from, with msgID, through the engine with
// the real checks and the default rules, and returns the verdict line.
func decideDMARC(t *testing.T, e *Engine, from, msgID string) *Record {
	t.Helper()
	tx := &Transaction{Session: "S1", ID: "S1.1", Start: time.Now(),
		Client:   Client{Addr: netip.MustParseAddrPort("192.0.2.7:4000"), HELO: "c.sender.test", ESMTP: true},
		MailFrom: "a@sender.test", Rcpts: []string{"u@example.org"}, Checks: map[string]CheckRecord{},
		Content: staticContent("From: a@" + from + "\r\nDate: Wed, 25 Nov 2026 10:00:00 +0000\r\nMessage-ID: <" + msgID +
			">\r\nSubject: s\r\n\r\nbody\r\n"),
		MessageID: msgID, Size: 100}
	s := e.NewSession()
	v := s.Decide(context.Background(), StageData, tx)
	rec := NewRecord(tx, Outcome{Stage: StageData, Action: v.Action.String(), Reason: v.Reason, Reply: v.Reply.String()}, time.Now())
	// Through JSON, as replay reads the log.
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	var back Record
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	return &back
}

// TestDMARCPctDefaultRules shows the default rules acting on the policy
// after pct sampling, and replay reaching the same action from the
// logged facts, also from a line written before applied_policy existed.
func TestDMARCPctDefaultRules(t *testing.T) {
	srv := dnstest.Start(t, pctZone)
	r, err := resolver.New(resolver.Options{Servers: []string{srv.Addr()}, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	e := NewEngine(Options{Domains: []string{"example.org"}, Resolver: r})
	set := DefaultRules()

	var in50, out50 string
	for i := 0; in50 == "" || out50 == ""; i++ {
		id := fmt.Sprintf("%d@mail.pct50.test", i)
		if dmarc.Sample(50, "pct50.test", id) {
			in50 = id
		} else {
			out50 = id
		}
	}
	tests := []struct {
		from, msgID                     string
		action, reason, policy, applied string
		sampled                         bool
	}{
		{from: "pct0.test", msgID: "m1@pct0.test", action: "quarantine", reason: "dmarc-quarantine", policy: "reject", applied: "quarantine"},
		{from: "pct50.test", msgID: in50, action: "reject", reason: "dmarc-reject", policy: "reject", applied: "reject", sampled: true},
		{from: "pct50.test", msgID: out50, action: "quarantine", reason: "dmarc-quarantine", policy: "reject", applied: "quarantine"},
		{from: "full.test", msgID: "m1@full.test", action: "reject", reason: "dmarc-reject", policy: "reject", applied: "reject", sampled: true},
		{from: "q0.test", msgID: "m1@q0.test", action: "accept", policy: "quarantine", applied: "none"},
	}
	for _, tc := range tests {
		t.Run(tc.from+" "+tc.msgID, func(t *testing.T) {
			rec := decideDMARC(t, e, tc.from, tc.msgID)
			d := rec.Facts.DMARC
			if rec.Action != tc.action || rec.Reason != tc.reason {
				t.Errorf("decided %s (%s), want %s (%s); dmarc facts %+v", rec.Action, rec.Reason, tc.action, tc.reason, d)
			}
			if d.Result != "fail" || d.Policy != tc.policy || d.AppliedPolicy != tc.applied || d.Sampled != tc.sampled {
				t.Errorf("dmarc facts %+v, want policy %q, applied_policy %q, sampled %v", d, tc.policy, tc.applied, tc.sampled)
			}
			if got := Replay(rec, set); got.Action != rec.Action || got.Reason != rec.Reason {
				t.Errorf("replay: %s (%s), logged %s (%s)", got.Action, got.Reason, rec.Action, rec.Reason)
			}
			// A line from before the fact existed is sampled again from
			// its Message-ID and From domain.
			old := *rec
			f := *rec.Facts
			f.DMARC.AppliedPolicy, f.DMARC.Sampled = "", false
			old.Facts = &f
			if got := Replay(&old, set); got.Action != rec.Action || got.Reason != rec.Reason {
				t.Errorf("replay of a line without applied_policy: %s (%s), logged %s (%s)", got.Action, got.Reason, rec.Action, rec.Reason)
			}
			b, _ := json.Marshal(rec.Facts.DMARC)
			if !bytes.Contains(b, []byte(`"applied_policy":"`+tc.applied+`"`)) {
				t.Errorf("logged dmarc facts %s lack applied_policy", b)
			}
		})
	}
}
