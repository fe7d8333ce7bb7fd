package policy

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"mxguard/checks/resolver"
	"mxguard/checks/resolver/dnstest"
)

// The name the rdns check verifies is the client's PTR: in client.ptr for
// rules, in the session's later transactions, and in the verdict line.
func TestRDNSFillsClientPTR(t *testing.T) {
	s := dnstest.Start(t, `
$TTL 60
$ORIGIN 0.0.127.in-addr.arpa.
@   SOA ns hostmaster 1 3600 600 86400 60
2   PTR mail.good.test.
3   PTR dyn-3.isp.test.
$ORIGIN test.
mail.good.test.   A    127.0.0.2
dyn-3.isp.test.   A    192.0.2.3
`)
	r, err := resolver.New(resolver.Options{Servers: []string{s.Addr()}, Timeout: time.Second, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	set := mustRules(t, `rules:
  - name: no-fcrdns
    stage: connect
    when: rdns.result == "fail"
    action: reject
    reply: "550 5.7.1 ${client.ip} has no name that resolves back to it"
  - name: named
    stage: mail
    when: client.ptr == "mail.good.test"
    action: score
    score: 1
`)
	e := NewEngine(Options{Domains: []string{"example.org"}, Rules: set, Resolver: r})
	for _, tc := range []struct{ ip, ptr, action string }{
		{ip: "127.0.0.2", ptr: "mail.good.test", action: "accept"},
		{ip: "127.0.0.3", ptr: "", action: "reject"},
	} {
		sess := e.NewSession()
		conn := testTx()
		conn.Client.Addr = netip.AddrPortFrom(netip.MustParseAddr(tc.ip), 4000)
		v := sess.Decide(context.Background(), StageConnect, conn)
		if v.Action.String() != tc.action || conn.Client.PTR != tc.ptr {
			t.Errorf("%s at connect: %s, ptr %q; want %s, %q", tc.ip, v.Action, conn.Client.PTR, tc.action, tc.ptr)
		}
		if v.Action.Refuses() {
			continue
		}
		tx := testTx()
		tx.Client.Addr = conn.Client.Addr
		sess.Decide(context.Background(), StageMail, tx)
		rec := NewRecord(tx, Outcome{Stage: StageMail, Action: "accept"}, time.Now())
		if rec.ClientPTR != tc.ptr || rec.Facts.Client.PTR != tc.ptr || tx.Score != 1 {
			t.Errorf("%s at mail: client_ptr %q, client.ptr %q, score %v; want %q and the rule's score", tc.ip, rec.ClientPTR, rec.Facts.Client.PTR, tx.Score, tc.ptr)
		}
	}
}

// dnstestResolver is a resolver asking an empty in-process DNS server.
func dnstestResolver(t *testing.T) *resolver.Resolver {
	t.Helper()
	s := dnstest.Start(t)
	r, err := resolver.New(resolver.Options{Servers: []string{s.Addr()}, Timeout: time.Second, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Reverse DNS is a sign for the rules that name it, not a verdict: the
// default rules, whose check-temperror rule reads every check's result,
// neither wait for it nor hold mail when a client's PTR servers fail.
func TestRDNSOnlyWhenNamed(t *testing.T) {
	s := dnstest.Start(t, "$TTL 60\n$ORIGIN test.\n@ SOA ns hostmaster 1 3600 600 86400 60\n")
	r, err := resolver.New(resolver.Options{Servers: []string{s.Addr()}, Timeout: time.Second, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	e := NewEngine(Options{Domains: []string{"example.org"}, Resolver: r})
	st := e.cur.Load()
	for stage, plan := range st.plan {
		for _, c := range plan {
			if c.name == "rdns" {
				t.Errorf("the default rules run rdns at %s", stage)
			}
		}
	}
	// Named, it runs; and its temperror does not make the default
	// check-temperror rule hold the message.
	tx := testTx()
	tx.Checks["rdns"] = CheckRecord{Result: ResultTemperror}
	tx.Checks["dnsbl"] = CheckRecord{Result: "none"}
	v := e.NewSession().Decide(context.Background(), StageData, tx)
	if v.Reason == "check-temperror" {
		t.Fatalf("an rdns temperror held the message: %+v", v)
	}
	named := NewEngine(Options{Domains: []string{"example.org"}, Resolver: r, Rules: mustRules(t, `rules:
  - name: no-ptr
    stage: connect
    when: rdns.result == "none"
    action: score
    score: 1
`)})
	if got := names(named.cur.Load().plan[StageConnect]); !strings.Contains(got, "rdns") {
		t.Fatalf("a rule naming rdns does not run it: plan %q", got)
	}
}
