package policy

import (
	"context"
	"net/netip"
	"testing"
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
		v := Refuse(c.action, "test", c.code, c.enh, "text", "S1")
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
