package policy

import (
	"context"
	"testing"
)

// TestLocalDomainALabels holds the relay decision to compare domains as
// names, not spellings: an internationalised domain of ours is ours in
// U-labels and in A-labels, in any case and with the trailing dot; a name
// that only looks like one of ours (fullwidth letters, which a backend may
// not map) is not, and is refused as relaying.
func TestLocalDomainALabels(t *testing.T) {
	e := NewEngine(Options{Domains: []string{"xn--bcher-kva.test", "example.org"}})
	for rcpt, ok := range map[string]bool{
		"user@xn--bcher-kva.test":  true,
		"user@XN--BCHER-KVA.test.": true,
		"user@bücher.test":         true,
		"user@BÜCHER.test.":        true,
		"user@example.org":         true,
		"user@ｅｘａｍｐｌｅ.org":         false,
		"user@bu\u0308cher.test":   false, // not NFC
		"user@xbücher.test":        false,
		"user@bücher.test.evil":    false,
	} {
		tx := testTx()
		tx.Rcpt = rcpt
		v := e.NewSession().Decide(context.Background(), StageRcpt, tx)
		if got := !v.Action.Refuses(); got != ok {
			t.Errorf("RCPT %q: accepted=%v, want %v (%+v)", rcpt, got, ok, v)
		}
		if !ok && (v.Reply.Code != 550 || v.Reply.Enhanced != [3]int{5, 7, 1} || v.Reason != "relay") {
			t.Errorf("RCPT %q: %s (reason %q), want 550 5.7.1 for reason relay", rcpt, v.Reply, v.Reason)
		}
	}
}

// TestRuleDomainsCompareNames holds a rule's domains to the same
// comparison: a recipient at the domain in another spelling (the trailing
// dot of DNS's absolute form, A-labels for U-labels) is still at it, so
// the rule cannot be dodged by respelling the recipient. The fact keeps
// the spelling the client used.
func TestRuleDomainsCompareNames(t *testing.T) {
	e := NewEngine(Options{Domains: []string{"xn--bcher-kva.test", "example.org"}, Rules: mustRules(t, `
rules:
  - name: example-closed
    stage: rcpt
    domains: [Example.ORG]
    when: "true"
    action: reject
    reply: "550 5.7.1 closed"
  - name: buecher-closed
    stage: rcpt
    domains: [bücher.test.]
    when: "true"
    action: reject
    reply: "550 5.7.1 closed"
`)})
	for rcpt, rule := range map[string]string{
		"user@example.org":        "example-closed",
		"user@example.org.":       "example-closed",
		"user@EXAMPLE.org.":       "example-closed",
		"user@bücher.test":        "buecher-closed",
		"user@xn--bcher-kva.test": "buecher-closed",
	} {
		tx := testTx()
		tx.Rcpt = rcpt
		v := e.NewSession().Decide(context.Background(), StageRcpt, tx)
		if v.Reason != rule || v.Reply.Code != 550 {
			t.Errorf("RCPT %q: %s (reason %q), want rule %s", rcpt, v.Reply, v.Reason, rule)
		}
	}
	tx := testTx()
	tx.Rcpt = "user@EXAMPLE.org."
	e.NewSession().Decide(context.Background(), StageRcpt, tx)
	if d := tx.facts.Rcpt.Domain; d != "example.org." {
		t.Errorf("rcpt.domain = %q, want the client's spelling lower-cased, %q", d, "example.org.")
	}
}
