package dmarc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"mxguard/checks/resolver"
	"mxguard/checks/resolver/dnstest"
)

// zone is the DNS data of the DMARC tests. Every domain plays one part, so
// the cases below can share it. The names are under .test (RFC 2606); the
// Public Suffix List's default rule makes "x.test" an Organizational
// Domain.
const zone = `
$ORIGIN test.
$TTL 300
_dmarc.reject       TXT "v=DMARC1; p=reject; rua=mailto:agg@reject.test"
_dmarc.quarantine   TXT "v=DMARC1; p=quarantine"
_dmarc.pct          TXT "v=DMARC1; p=reject; pct=20"
_dmarc.strict       TXT "v=DMARC1; p=reject; adkim=s; aspf=s"
_dmarc.mixed        TXT "v=DMARC1; p=reject; adkim=r; aspf=s"
; An Organizational Domain with a subdomain policy and, per RFC 9091, a
; policy for non-existent subdomains.
_dmarc.org          TXT "v=DMARC1; p=reject; sp=quarantine; np=reject"
org                 A   192.0.2.1
www.org             A   192.0.2.2
mx.org              MX  10 mail.org.test.
_dmarc.own.org      TXT "v=DMARC1; p=none"
_dmarc.txtonly.org  TXT "google-site-verification=abc"
; no sp: subdomains get p.
_dmarc.nosp         TXT "v=DMARC1; p=quarantine"
www.nosp            A   192.0.2.3
; two DMARC records: RFC 7489 §6.6.3 says none applies.
_dmarc.multi        TXT "v=DMARC1; p=reject"
_dmarc.multi        TXT "v=DMARC1; p=none"
; other TXT records beside the DMARC record are discarded.
_dmarc.other        TXT "v=spf1 -all"
_dmarc.other        TXT "v=DMARC1; p=reject"
; a record split into character-strings.
_dmarc.split        TXT "v=DMARC1; " "p=reject"
; broken records.
_dmarc.badp         TXT "v=DMARC1; p=bogus"
_dmarc.nop          TXT "v=DMARC1; adkim=s"
_dmarc.badprua      TXT "v=DMARC1; p=bogus; rua=mailto:agg@badprua.test"
_dmarc.badsp        TXT "v=DMARC1; p=reject; sp=bogus"
_dmarc.badtags      TXT "v=DMARC1; p=reject; pct=200; adkim=x; fo=z; junk; unknown=1"
_dmarc.notfirst     TXT "p=reject; v=DMARC1"
_dmarc.v2           TXT "v=DMARC2; p=reject"
_dmarc.casing       TXT "v=DMARC1; P=Reject; ASPF=S"
_dmarc.servfail     TXT "v=DMARC1; p=reject"
`

// newChecker starts a dnstest server with zone and returns a Checker that
// uses mxguard's resolver against it, and the server.
func newChecker(t *testing.T, withExists bool) (*Checker, *dnstest.Server) {
	t.Helper()
	s := dnstest.Start(t, zone)
	r, err := resolver.New(resolver.Options{Servers: []string{s.Addr()}, Timeout: 300 * time.Millisecond, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	c := &Checker{Lookup: r.LookupTXT}
	if withExists {
		c.Exists = existsVia(r)
	}
	return c, s
}

// existsVia reports whether a domain has A, AAAA or MX records (RFC 9091
// §2), the way mxguard wires Checker.Exists.
func existsVia(r *resolver.Resolver) func(context.Context, string) (bool, error) {
	return func(ctx context.Context, domain string) (bool, error) {
		_, err := r.LookupIPAddr(ctx, domain)
		if err == nil {
			return true, nil
		}
		if de := (*net.DNSError)(nil); !errors.As(err, &de) || !de.IsNotFound {
			return false, err
		}
		_, err = r.LookupMX(ctx, domain)
		if err == nil {
			return true, nil
		}
		if de := (*net.DNSError)(nil); !errors.As(err, &de) || !de.IsNotFound {
			return false, err
		}
		return false, nil
	}
}

// from returns a header section whose From is an address at domain.
func from(domain string) []byte {
	return hdr("Subject: test", "From: Someone <someone@"+domain+">", "To: rcpt@mxguard.test")
}

func spf(result, domain string) Input { return Input{SPFResult: result, SPFDomain: domain} }

func TestCheck(t *testing.T) {
	tests := []struct {
		name    string
		from    string // From domain; header is built from it unless header is set
		header  []byte
		in      Input
		exists  bool     // wire Checker.Exists
		servers []string // names the server answers SERVFAIL for
		drop    []string // names the server never answers
		want    Result
		detail  string // a substring of Detail
	}{
		{
			name: "aligned SPF pass",
			from: "reject.test", in: spf("pass", "reject.test"),
			want:   Result{Result: Pass, From: "reject.test", Policy: "reject", AppliedPolicy: "reject", Sampled: true, Percent: 100, SPFAligned: true, Record: "reject.test"},
			detail: "SPF passed for aligned reject.test",
		},
		{
			name: "aligned DKIM pass",
			from: "reject.test", in: Input{DKIM: []DKIMSig{{Domain: "evil.test", Result: "pass"}, {Domain: "reject.test", Result: "pass"}}},
			want:   Result{Result: Pass, From: "reject.test", Policy: "reject", AppliedPolicy: "reject", Sampled: true, Percent: 100, DKIMAligned: true, Record: "reject.test"},
			detail: "DKIM passed for aligned d=reject.test",
		},
		{
			name: "relaxed alignment: SPF for a subdomain",
			from: "reject.test", in: spf("pass", "bounces.reject.test"),
			want: Result{Result: Pass, From: "reject.test", Policy: "reject", AppliedPolicy: "reject", Sampled: true, Percent: 100, SPFAligned: true, Record: "reject.test"},
		},
		{
			name: "relaxed alignment: DKIM parent of a From subdomain",
			from: "www.org.test", in: Input{DKIM: []DKIMSig{{Domain: "org.test", Result: "pass"}}},
			want: Result{Result: Pass, From: "www.org.test", Policy: "quarantine", AppliedPolicy: "quarantine", Sampled: true, Percent: 100, DKIMAligned: true, Record: "org.test"},
		},
		{
			name: "strict alignment: subdomain SPF and DKIM do not align",
			from: "strict.test",
			in:   Input{SPFResult: "pass", SPFDomain: "bounces.strict.test", DKIM: []DKIMSig{{Domain: "mail.strict.test", Result: "pass"}}},
			want: Result{Result: Fail, From: "strict.test", Policy: "reject", AppliedPolicy: "reject", Sampled: true, Percent: 100, Record: "strict.test"},
		},
		{
			name: "strict alignment: exact match aligns",
			from: "strict.test", in: Input{DKIM: []DKIMSig{{Domain: "STRICT.test.", Result: "pass"}}},
			want: Result{Result: Pass, From: "strict.test", Policy: "reject", AppliedPolicy: "reject", Sampled: true, Percent: 100, DKIMAligned: true, Record: "strict.test"},
		},
		{
			name: "aspf=s, adkim=r: only DKIM aligns",
			from: "mixed.test",
			in:   Input{SPFResult: "pass", SPFDomain: "a.mixed.test", DKIM: []DKIMSig{{Domain: "b.mixed.test", Result: "pass"}}},
			want: Result{Result: Pass, From: "mixed.test", Policy: "reject", AppliedPolicy: "reject", Sampled: true, Percent: 100, DKIMAligned: true, Record: "mixed.test"},
		},
		{
			name: "SPF pass for an unaligned domain",
			from: "reject.test", in: spf("pass", "evil.test"),
			want: Result{Result: Fail, From: "reject.test", Policy: "reject", AppliedPolicy: "reject", Sampled: true, Percent: 100, Record: "reject.test"},
		},
		{
			name: "aligned SPF that did not pass",
			from: "reject.test", in: spf("softfail", "reject.test"),
			want: Result{Result: Fail, From: "reject.test", Policy: "reject", AppliedPolicy: "reject", Sampled: true, Percent: 100, Record: "reject.test"},
		},
		{
			name: "aligned DKIM that failed",
			from: "reject.test", in: Input{DKIM: []DKIMSig{{Domain: "reject.test", Result: "fail"}}},
			want: Result{Result: Fail, From: "reject.test", Policy: "reject", AppliedPolicy: "reject", Sampled: true, Percent: 100, Record: "reject.test"},
		},
		{
			name: "p=reject fail",
			from: "reject.test", in: spf("fail", "evil.test"),
			want:   Result{Result: Fail, From: "reject.test", Policy: "reject", AppliedPolicy: "reject", Sampled: true, Percent: 100, Record: "reject.test"},
			detail: "no aligned SPF or DKIM pass",
		},
		{
			name: "p=quarantine fail",
			from: "quarantine.test",
			want: Result{Result: Fail, From: "quarantine.test", Policy: "quarantine", AppliedPolicy: "quarantine", Sampled: true, Percent: 100, Record: "quarantine.test"},
		},
		{
			name: "pct",
			from: "pct.test",
			// Without a Message-ID the draw is of the From domain alone.
			want:   Result{Result: Fail, From: "pct.test", Policy: "reject", AppliedPolicy: "quarantine", Percent: 20, Record: "pct.test"},
			detail: "not in the pct=20 sample: quarantine applies instead of reject",
		},
		{
			name: "subdomain uses sp",
			from: "www.org.test",
			want: Result{Result: Fail, From: "www.org.test", Policy: "quarantine", AppliedPolicy: "quarantine", Sampled: true, Percent: 100, Record: "org.test"},
		},
		{
			name: "org domain itself uses p",
			from: "org.test",
			want: Result{Result: Fail, From: "org.test", Policy: "reject", AppliedPolicy: "reject", Sampled: true, Percent: 100, Record: "org.test"},
		},
		{
			name: "subdomain without sp uses p",
			from: "www.nosp.test",
			want: Result{Result: Fail, From: "www.nosp.test", Policy: "quarantine", AppliedPolicy: "quarantine", Sampled: true, Percent: 100, Record: "nosp.test"},
		},
		{
			name: "subdomain with its own record uses its p",
			from: "own.org.test",
			want: Result{Result: Fail, From: "own.org.test", Policy: "none", AppliedPolicy: "none", Sampled: true, Percent: 100, Record: "own.org.test"},
		},
		{
			name: "org-domain fallback from a deep subdomain",
			from: "a.b.c.org.test", in: spf("pass", "org.test"),
			want: Result{Result: Pass, From: "a.b.c.org.test", Policy: "quarantine", AppliedPolicy: "quarantine", Sampled: true, Percent: 100, SPFAligned: true, Record: "org.test"},
		},
		{
			name: "org-domain fallback when the From domain has only non-DMARC TXT",
			from: "txtonly.org.test",
			want: Result{Result: Fail, From: "txtonly.org.test", Policy: "quarantine", AppliedPolicy: "quarantine", Sampled: true, Percent: 100, Record: "org.test"},
		},
		{
			name: "np for a non-existent subdomain",
			from: "ghost.org.test", exists: true,
			want:   Result{Result: Fail, From: "ghost.org.test", Policy: "reject", AppliedPolicy: "reject", Sampled: true, Percent: 100, Record: "org.test"},
			detail: "ghost.org.test does not exist; np= applies",
		},
		{
			name: "np not applied to an existing subdomain (A)",
			from: "www.org.test", exists: true,
			want: Result{Result: Fail, From: "www.org.test", Policy: "quarantine", AppliedPolicy: "quarantine", Sampled: true, Percent: 100, Record: "org.test"},
		},
		{
			name: "np not applied to an existing subdomain (MX only)",
			from: "mx.org.test", exists: true,
			want: Result{Result: Fail, From: "mx.org.test", Policy: "quarantine", AppliedPolicy: "quarantine", Sampled: true, Percent: 100, Record: "org.test"},
		},
		{
			name: "np not applied without Exists",
			from: "ghost.org.test",
			want: Result{Result: Fail, From: "ghost.org.test", Policy: "quarantine", AppliedPolicy: "quarantine", Sampled: true, Percent: 100, Record: "org.test"},
		},
		{
			name: "np existence unknown on a fail: temperror",
			from: "flaky.org.test", exists: true, servers: []string{"flaky.org.test"},
			want:   Result{Result: TempError, From: "flaky.org.test", Policy: "quarantine", AppliedPolicy: "quarantine", Sampled: true, Percent: 100, Record: "org.test"},
			detail: "cannot tell whether flaky.org.test exists",
		},
		{
			name: "np existence unknown on a pass: still pass",
			from: "flaky.org.test", exists: true, servers: []string{"flaky.org.test"}, in: spf("pass", "org.test"),
			want: Result{Result: Pass, From: "flaky.org.test", Policy: "quarantine", AppliedPolicy: "quarantine", Sampled: true, Percent: 100, SPFAligned: true, Record: "org.test"},
		},
		{
			name: "no record: none",
			from: "norecord.test", in: spf("pass", "norecord.test"),
			want:   Result{Result: None, From: "norecord.test", SPFAligned: true},
			detail: "no DMARC record at _dmarc.norecord.test",
		},
		{
			name:   "no record at subdomain or org domain: none",
			from:   "a.norecord.test",
			want:   Result{Result: None, From: "a.norecord.test"},
			detail: "no DMARC record at _dmarc.a.norecord.test or _dmarc.norecord.test",
		},
		{
			name: "SERVFAIL on _dmarc: temperror",
			from: "servfail.test", servers: []string{"_dmarc.servfail.test"}, in: spf("pass", "servfail.test"),
			want:   Result{Result: TempError, From: "servfail.test"},
			detail: "dmarc: lookup _dmarc.servfail.test",
		},
		{
			name: "SERVFAIL on the org domain's _dmarc: temperror",
			from: "www.servfail.test", servers: []string{"_dmarc.servfail.test"},
			want: Result{Result: TempError, From: "www.servfail.test"},
		},
		{
			name: "timeout on _dmarc: temperror",
			from: "reject.test", drop: []string{"_dmarc.reject.test"}, in: spf("pass", "reject.test"),
			want: Result{Result: TempError, From: "reject.test"},
		},
		{
			name: "aligned SPF temperror and nothing aligned: temperror",
			from: "reject.test", in: spf("temperror", "reject.test"),
			want:   Result{Result: TempError, From: "reject.test", Policy: "reject", AppliedPolicy: "reject", Sampled: true, Percent: 100, Record: "reject.test"},
			detail: "SPF temperror for reject.test",
		},
		{
			name: "aligned DKIM temperror and nothing aligned: temperror",
			from: "reject.test", in: Input{SPFResult: "fail", SPFDomain: "reject.test", DKIM: []DKIMSig{{Domain: "reject.test", Result: "temperror"}}},
			want:   Result{Result: TempError, From: "reject.test", Policy: "reject", AppliedPolicy: "reject", Sampled: true, Percent: 100, Record: "reject.test"},
			detail: "DKIM temperror for d=reject.test",
		},
		{
			name: "SPF temperror beside an aligned DKIM pass: pass",
			from: "reject.test", in: Input{SPFResult: "temperror", SPFDomain: "reject.test", DKIM: []DKIMSig{{Domain: "reject.test", Result: "pass"}}},
			want: Result{Result: Pass, From: "reject.test", Policy: "reject", AppliedPolicy: "reject", Sampled: true, Percent: 100, DKIMAligned: true, Record: "reject.test"},
		},
		{
			// A sender must not turn a fail into temperror by breaking
			// the DNS of a domain it controls.
			name: "unaligned SPF and DKIM temperror: fail",
			from: "reject.test", in: Input{SPFResult: "temperror", SPFDomain: "evil.test", DKIM: []DKIMSig{{Domain: "evil.test", Result: "temperror"}}},
			want: Result{Result: Fail, From: "reject.test", Policy: "reject", AppliedPolicy: "reject", Sampled: true, Percent: 100, Record: "reject.test"},
		},
		{
			name:   "two From header fields: permerror",
			header: hdr("From: a@reject.test", "From: b@evil.test"), in: spf("pass", "evil.test"),
			want:   Result{Result: PermError},
			detail: "dmarc: 2 From header fields",
		},
		{
			name:   "one From with two addresses: permerror",
			header: hdr("From: a@evil.test, b@reject.test"), in: spf("pass", "evil.test"),
			want:   Result{Result: PermError},
			detail: "dmarc: From holds 2 addresses",
		},
		{
			name:   "no From: permerror",
			header: hdr("Subject: x"),
			want:   Result{Result: PermError},
			detail: "dmarc: no From header field",
		},
		{
			name:   "two DMARC records: none",
			from:   "multi.test",
			want:   Result{Result: None, From: "multi.test"},
			detail: "2 DMARC records at _dmarc.multi.test",
		},
		{
			name: "two DMARC records at the org domain: none",
			from: "www.multi.test",
			want: Result{Result: None, From: "www.multi.test"},
		},
		{
			name: "non-DMARC TXT beside the record is ignored",
			from: "other.test",
			want: Result{Result: Fail, From: "other.test", Policy: "reject", AppliedPolicy: "reject", Sampled: true, Percent: 100, Record: "other.test"},
		},
		{
			name: "record split into character-strings",
			from: "split.test",
			want: Result{Result: Fail, From: "split.test", Policy: "reject", AppliedPolicy: "reject", Sampled: true, Percent: 100, Record: "split.test"},
		},
		{
			name:   "malformed record (invalid p, no rua): ignored, none",
			from:   "badp.test",
			want:   Result{Result: None, From: "badp.test"},
			detail: "no valid p=",
		},
		{
			name: "record without p: ignored, none",
			from: "nop.test",
			want: Result{Result: None, From: "nop.test"},
		},
		{
			name:   "invalid p with a valid rua: p=none",
			from:   "badprua.test",
			want:   Result{Result: Fail, From: "badprua.test", Policy: "none", AppliedPolicy: "none", Sampled: true, Percent: 100, Record: "badprua.test"},
			detail: "treated as p=none",
		},
		{
			name:   "invalid sp without rua: ignored, none",
			from:   "badsp.test",
			want:   Result{Result: None, From: "badsp.test"},
			detail: "invalid sp=",
		},
		{
			name: "invalid optional tags fall back to defaults",
			from: "badtags.test", in: spf("pass", "www.badtags.test"),
			want:   Result{Result: Pass, From: "badtags.test", Policy: "reject", AppliedPolicy: "reject", Sampled: true, Percent: 100, SPFAligned: true, Record: "badtags.test"},
			detail: "ignored invalid pct, adkim, fo",
		},
		{
			name: "v= not first: not a DMARC record",
			from: "notfirst.test",
			want: Result{Result: None, From: "notfirst.test"},
		},
		{
			name: "v=DMARC2: not a DMARC record",
			from: "v2.test",
			want: Result{Result: None, From: "v2.test"},
		},
		{
			name: "tag names and policy values are case-insensitive",
			from: "casing.test", in: spf("pass", "a.casing.test"),
			want: Result{Result: Fail, From: "casing.test", Policy: "reject", AppliedPolicy: "reject", Sampled: true, Percent: 100, Record: "casing.test"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, s := newChecker(t, tc.exists)
			for _, n := range tc.servers {
				s.ServFail(n)
			}
			for _, n := range tc.drop {
				s.Drop(n)
			}
			in := tc.in
			in.Header = tc.header
			if in.Header == nil {
				in.Header = from(tc.from)
			}
			got := c.Check(context.Background(), in)
			detail := got.Detail
			got.Detail = ""
			if got != tc.want {
				t.Errorf("Check:\n got %+v\nwant %+v\ndetail: %s", got, tc.want, detail)
			}
			if !strings.Contains(detail, tc.detail) {
				t.Errorf("Detail %q does not contain %q", detail, tc.detail)
			}
			if detail == "" {
				t.Errorf("empty Detail")
			}
		})
	}
}

// TestCheckNoLookup: a Checker without a lookup must not pass or fail
// anything, and must not fall back to the machine's resolver.
func TestCheckNoLookup(t *testing.T) {
	var c Checker
	got := c.Check(context.Background(), Input{Header: from("reject.test"), SPFResult: "pass", SPFDomain: "reject.test"})
	if got.Result != TempError {
		t.Errorf("Result = %q, want temperror", got.Result)
	}
}

// TestCheckLookupErrors pins the classification of lookup errors, including
// ones that do not come from mxguard's resolver.
func TestCheckLookupErrors(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{err: &net.DNSError{Err: "no such host", Name: "_dmarc.reject.test", IsNotFound: true}, want: None},
		{err: fmt.Errorf("wrapped: %w", &net.DNSError{Err: "no such host", IsNotFound: true}), want: None},
		{err: &net.DNSError{Err: "server misbehaving", IsTemporary: true}, want: TempError},
		{err: &net.DNSError{Err: "i/o timeout", IsTimeout: true, IsTemporary: true}, want: TempError},
		{err: &net.DNSError{Err: "odd", IsNotFound: true, IsTemporary: true}, want: TempError},
		{err: &net.DNSError{Err: "unclassified"}, want: TempError},
		{err: context.DeadlineExceeded, want: TempError},
		{err: errors.New("anything else"), want: TempError},
	}
	for _, tc := range tests {
		t.Run(tc.err.Error(), func(t *testing.T) {
			c := &Checker{Lookup: func(context.Context, string) ([]string, error) { return nil, tc.err }}
			got := c.Check(context.Background(), Input{Header: from("www.reject.test")})
			if got.Result != tc.want {
				t.Errorf("Result = %q, want %q (detail %q)", got.Result, tc.want, got.Detail)
			}
		})
	}
}
