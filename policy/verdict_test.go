package policy

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"mxguard/internal/smtpreply"
)

// Every refusal reply agrees with itself: reject is 5xx, everything else
// that refuses is 4xx, and the enhanced code's class matches (RFC 3463).
func TestRefuseClassesAgree(t *testing.T) {
	for _, c := range []struct {
		action   Action
		code     int
		enh      [3]int
		wantCode int
		want     Action
	}{
		{ActionReject, 550, [3]int{5, 7, 1}, 550, ActionReject},
		{ActionReject, 451, [3]int{4, 7, 1}, 550, ActionReject},
		{ActionTempfail, 451, [3]int{4, 4, 1}, 451, ActionTempfail},
		{ActionTempfail, 554, [3]int{5, 7, 1}, 451, ActionTempfail},
		// The zero action never accepts: it becomes a tempfail.
		{ActionInvalid, 250, [3]int{2, 0, 0}, 451, ActionTempfail},
	} {
		v := Refuse(c.action, "test", smtpreply.Reply{Code: c.code, Enhanced: c.enh, Text: "text"}, "S1")
		if v.Action != c.want || v.Reply.Code != c.wantCode || !v.Reply.Valid() || !v.Action.Refuses() {
			t.Errorf("Refuse(%v, %d, %v) = %+v; want action %v, code %d, valid reply", c.action, c.code, c.enh, v, c.want, c.wantCode)
		}
		if v.Reply.Text != "text (session S1)" {
			t.Errorf("reply text %q lacks the session id", v.Reply.Text)
		}
	}
	if ActionInvalid.Refuses() == false {
		t.Error("the zero Action must refuse")
	}
}

func TestEngineRelayAndProtocol(t *testing.T) {
	e := NewEngine(Options{Domains: []string{"Example.ORG."}})
	tx := &Transaction{Session: "S", Client: Client{Addr: netip.MustParseAddrPort("192.0.2.1:25")}}
	for _, c := range []struct {
		rcpt string
		ok   bool
	}{
		{"user@example.org", true},
		{"user@EXAMPLE.org", true},
		{"user@example.org.", true},
		{"user@sub.example.org", false},
		{"user@example.org.evil.test", false},
		{"postmaster", true},
		{"PostMaster", true},
		{"postmaster@elsewhere.test", false},
		{"user@elsewhere.test", false},
	} {
		tx.Rcpt = c.rcpt
		v := e.NewSession().Decide(context.Background(), StageRcpt, tx)
		if got := !v.Action.Refuses(); got != c.ok {
			t.Errorf("RCPT %q: accepted=%v, want %v (%+v)", c.rcpt, got, c.ok, v)
		}
		if !c.ok && (v.Reply.Code != 550 || v.Reply.Enhanced != [3]int{5, 7, 1}) {
			t.Errorf("RCPT %q: reply %v, want 550 5.7.1", c.rcpt, v.Reply)
		}
	}
	for _, p := range []Protocol{{BareLF: true}, {BareCR: true}, {NUL: true}, {BadTerminator: true}} {
		tx.Protocol = p
		if v := e.NewSession().Decide(context.Background(), StageData, (&Transaction{Session: "S", Protocol: tx.Protocol})); v.Action != ActionReject || v.Reply.Code != 554 {
			t.Errorf("protocol %+v: %+v, want 554 reject", p, v)
		}
	}
	lt := &Transaction{Session: "S", Protocol: Protocol{LongLine: true}}
	if v := e.NewSession().Decide(context.Background(), StageData, lt); v.Reason != "long-line" || v.Reply.Code != 554 {
		t.Errorf("a line over 1000 octets: %+v, want the long-line rule's 554", v)
	}
}

// TestRuleReplyFitsOneLine: a rule's reply text, which the rules file may
// make as long as it likes, still gives the client a reply line within
// the 512 octets RFC 5321 §4.5.3.1.5 allows, session id whole at its end.
func TestRuleReplyFitsOneLine(t *testing.T) {
	long := strings.Repeat("refused, ", 60) + "end"
	set := mustRules(t, "rules:\n  - name: long\n    stage: mail\n    when: \"true\"\n    action: reject\n    reply: \"550 5.7.1 "+long+"\"\n")
	e := NewEngine(Options{Domains: []string{"example.org"}, Rules: set})
	tx := testTx()
	v := e.NewSession().Decide(context.Background(), StageMail, tx)
	line := v.Reply.String() + "\r\n"
	if v.Reason != "long" || len(line) > 512 || !strings.HasPrefix(line, "550 5.7.1 refused, ") || !strings.HasSuffix(line, " (session S1)\r\n") {
		t.Errorf("%s: %d octets: %q", v.Reason, len(line), line)
	}
}
