package spf

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"mxguard/checks/resolver"
	"mxguard/checks/resolver/dnstest"
)

// zone is the DNS data of the unit tests, in zone-file form.
const zone = `
$ORIGIN example.com.
@              TXT  "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 -all"
mail           A    192.0.2.10
mail           TXT  "v=spf1 a -all"
helo-fail      TXT  "v=spf1 -all"
split          TXT  "v=spf1 ip4:192.0.2.1 " "-all"
late-error     TXT  "v=spf1 ip4:192.0.2.0/24 -all bogus:x"
pm             TXT  "v=spf1 exists:%{l}.allow.example.com -all"
postmaster.allow A  127.0.0.2
servfail       TXT  "v=spf1 -all"
timeout        TXT  "v=spf1 -all"
inc-servfail   TXT  "v=spf1 include:servfail.example.com -all"
multi          TXT  "v=spf1 -all"
multi          TXT  "v=spf1 +all"
voids          TXT  "v=spf1 a:n1.example.com a:n2.example.com a:n3.example.com -all"
; eleven DNS-querying terms, one more than RFC 7208 §4.6.4 allows
many          TXT  "v=spf1 a:l1.example.com a:l2.example.com a:l3.example.com a:l4.example.com a:l5.example.com a:l6.example.com a:l7.example.com a:l8.example.com a:l9.example.com a:l10.example.com a:l11.example.com -all"
l1  A 198.51.100.1
l2  A 198.51.100.1
l3  A 198.51.100.1
l4  A 198.51.100.1
l5  A 198.51.100.1
l6  A 198.51.100.1
l7  A 198.51.100.1
l8  A 198.51.100.1
l9  A 198.51.100.1
l10 A 198.51.100.1
l11 A 198.51.100.1
`

// newChecker serves zone on loopback and returns a Checker using a real
// resolver pointed at it.
func newChecker(t testing.TB) (*Checker, *dnstest.Server) {
	t.Helper()
	srv := dnstest.Start(t, zone)
	srv.ServFail("servfail.example.com")
	srv.Drop("timeout.example.com")
	r, err := resolver.New(resolver.Options{
		Servers:   []string{srv.Addr()},
		Timeout:   time.Second, // not to time out on a loaded machine
		Attempts:  1,
		CacheSize: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &Checker{Resolver: r}, srv
}

func TestCheck(t *testing.T) {
	c, _ := newChecker(t)
	v4 := netip.MustParseAddr("192.0.2.10")
	tests := []struct {
		name string
		in   Input
		want Result // Detail is checked with wantDetail, if set
		// wantDetail is a substring Detail must contain.
		wantDetail string
	}{{
		name:       "mailfrom pass, helo pass",
		in:         Input{IP: v4, HELO: "mail.example.com", MailFrom: "a@example.com"},
		want:       Result{Result: Pass, Domain: "example.com", Identity: IdentityMailFrom, HELOResult: Pass},
		wantDetail: "ip4:192.0.2.0/24",
	}, {
		name: "helo evaluated on its own",
		in:   Input{IP: v4, HELO: "helo-fail.example.com", MailFrom: "a@example.com"},
		want: Result{Result: Pass, Domain: "example.com", Identity: IdentityMailFrom, HELOResult: Fail},
	}, {
		// RFC 7208 §2.4: the null sender is checked as postmaster@HELO.
		name: "null sender uses helo",
		in:   Input{IP: v4, HELO: "mail.example.com", MailFrom: ""},
		want: Result{Result: Pass, Domain: "mail.example.com", Identity: IdentityHELO, HELOResult: Pass},
	}, {
		name: "null sender, helo fails",
		in:   Input{IP: v4, HELO: "helo-fail.example.com"},
		want: Result{Result: Fail, Domain: "helo-fail.example.com", Identity: IdentityHELO, HELOResult: Fail},
	}, {
		name: "sender without domain uses helo",
		in:   Input{IP: v4, HELO: "mail.example.com", MailFrom: "postmaster"},
		want: Result{Result: Pass, Domain: "mail.example.com", Identity: IdentityHELO, HELOResult: Pass},
	}, {
		// RFC 7208 §2.3, §4.3: an address literal is not a domain.
		name: "helo address literal",
		in:   Input{IP: v4, HELO: "[192.0.2.10]", MailFrom: "a@example.com"},
		want: Result{Result: Pass, Domain: "example.com", Identity: IdentityMailFrom, HELOResult: None},
	}, {
		name:       "helo address literal, null sender",
		in:         Input{IP: v4, HELO: "[192.0.2.10]"},
		want:       Result{Result: None, Domain: "[192.0.2.10]", Identity: IdentityHELO, HELOResult: None},
		wantDetail: "address literal",
	}, {
		name: "helo bare address",
		in:   Input{IP: v4, HELO: "192.0.2.10", MailFrom: "a@example.com"},
		want: Result{Result: Pass, Domain: "example.com", Identity: IdentityMailFrom, HELOResult: None},
	}, {
		name: "helo single label",
		in:   Input{IP: v4, HELO: "localhost", MailFrom: "a@example.com"},
		want: Result{Result: Pass, Domain: "example.com", Identity: IdentityMailFrom, HELOResult: None},
	}, {
		name: "helo empty",
		in:   Input{IP: v4, MailFrom: "a@example.com"},
		want: Result{Result: Pass, Domain: "example.com", Identity: IdentityMailFrom, HELOResult: None},
	}, {
		name:       "ipv6 client",
		in:         Input{IP: netip.MustParseAddr("2001:db8::25"), HELO: "mail.example.com", MailFrom: "a@example.com"},
		want:       Result{Result: Pass, Domain: "example.com", Identity: IdentityMailFrom, HELOResult: Fail},
		wantDetail: "ip6:2001:db8::/32",
	}, {
		name: "ipv6 client outside the policy",
		in:   Input{IP: netip.MustParseAddr("2001:db9::25"), HELO: "mail.example.com", MailFrom: "a@example.com"},
		want: Result{Result: Fail, Domain: "example.com", Identity: IdentityMailFrom, HELOResult: Fail},
	}, {
		name: "ipv4-mapped ipv6 client is ipv4",
		in:   Input{IP: netip.MustParseAddr("::ffff:192.0.2.10"), HELO: "mail.example.com", MailFrom: "a@example.com"},
		want: Result{Result: Pass, Domain: "example.com", Identity: IdentityMailFrom, HELOResult: Pass},
	}, {
		// RFC 7208 §4.3: no local part means "postmaster".
		name: "empty local part is postmaster",
		in:   Input{IP: v4, HELO: "localhost", MailFrom: "@pm.example.com"},
		want: Result{Result: Pass, Domain: "pm.example.com", Identity: IdentityMailFrom, HELOResult: None},
	}, {
		name: "other local part",
		in:   Input{IP: v4, HELO: "localhost", MailFrom: "bob@pm.example.com"},
		want: Result{Result: Fail, Domain: "pm.example.com", Identity: IdentityMailFrom, HELOResult: None},
	}, {
		name: "quoted local part with @",
		in:   Input{IP: v4, HELO: "localhost", MailFrom: `"a@b"@pm.example.com`},
		want: Result{Result: Pass, Domain: "pm.example.com", Identity: IdentityMailFrom, HELOResult: None},
	}, {
		name: "multi-string record",
		in:   Input{IP: netip.MustParseAddr("192.0.2.1"), HELO: "localhost", MailFrom: "a@split.example.com"},
		want: Result{Result: Pass, Domain: "split.example.com", Identity: IdentityMailFrom, HELOResult: None},
	}, {
		name: "no record",
		in:   Input{IP: v4, HELO: "localhost", MailFrom: "a@nothing.example.com"},
		want: Result{Result: None, Domain: "nothing.example.com", Identity: IdentityMailFrom, HELOResult: None},
	}, {
		name: "domain literal sender",
		in:   Input{IP: v4, HELO: "localhost", MailFrom: "a@[192.0.2.10]"},
		want: Result{Result: None, Domain: "[192.0.2.10]", Identity: IdentityMailFrom, HELOResult: None},
	}, {
		// RFC 7208 §4.6: a syntax error anywhere, even after a match.
		name:       "syntax error after the match",
		in:         Input{IP: v4, HELO: "localhost", MailFrom: "a@late-error.example.com"},
		want:       Result{Result: PermError, Domain: "late-error.example.com", Identity: IdentityMailFrom, HELOResult: None},
		wantDetail: "spf: syntax error in the record of late-error.example.com",
	}, {
		name: "two records",
		in:   Input{IP: v4, HELO: "localhost", MailFrom: "a@multi.example.com"},
		want: Result{Result: PermError, Domain: "multi.example.com", Identity: IdentityMailFrom, HELOResult: None},
	}, {
		name: "servfail",
		in:   Input{IP: v4, HELO: "localhost", MailFrom: "a@servfail.example.com"},
		want: Result{Result: TempError, Domain: "servfail.example.com", Identity: IdentityMailFrom, HELOResult: None},
	}, {
		name: "servfail in include",
		in:   Input{IP: v4, HELO: "localhost", MailFrom: "a@inc-servfail.example.com"},
		want: Result{Result: TempError, Domain: "inc-servfail.example.com", Identity: IdentityMailFrom, HELOResult: None},
	}, {
		name: "timeout",
		in:   Input{IP: v4, HELO: "localhost", MailFrom: "a@timeout.example.com"},
		want: Result{Result: TempError, Domain: "timeout.example.com", Identity: IdentityMailFrom, HELOResult: None},
	}, {
		// RFC 7208 §4.6.4: at most two void lookups.
		name:       "void lookup limit",
		in:         Input{IP: v4, HELO: "localhost", MailFrom: "a@voids.example.com"},
		want:       Result{Result: PermError, Domain: "voids.example.com", Identity: IdentityMailFrom, HELOResult: None},
		wantDetail: "void lookup limit",
	}, {
		// RFC 7208 §4.6.4: at most ten DNS-querying terms.
		name:       "lookup limit",
		in:         Input{IP: v4, HELO: "localhost", MailFrom: "a@many.example.com"},
		want:       Result{Result: PermError, Domain: "many.example.com", Identity: IdentityMailFrom, HELOResult: None},
		wantDetail: "lookup limit",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := c.Check(context.Background(), tt.in)
			detail := got.Detail
			got.Detail = ""
			if got != tt.want {
				t.Errorf("Check(%+v)\n got %+v\nwant %+v\ndetail: %s", tt.in, got, tt.want, detail)
			}
			if !strings.Contains(detail, tt.wantDetail) {
				t.Errorf("Detail = %q, want it to contain %q", detail, tt.wantDetail)
			}
		})
	}
}

func TestCheckInvalidInput(t *testing.T) {
	c, _ := newChecker(t)
	got := c.Check(context.Background(), Input{HELO: "mail.example.com", MailFrom: "a@example.com"})
	if got.Result != PermError || !strings.HasPrefix(got.Detail, "spf: ") {
		t.Errorf("no IP: got %+v, want permerror", got)
	}
	var nilChecker *Checker
	got = nilChecker.Check(context.Background(), Input{IP: netip.MustParseAddr("192.0.2.1")})
	if got.Result != TempError {
		t.Errorf("nil checker: got %+v, want temperror", got)
	}
	got = (&Checker{}).Check(context.Background(), Input{IP: netip.MustParseAddr("192.0.2.1")})
	if got.Result != TempError {
		t.Errorf("no resolver: got %+v, want temperror", got)
	}
}

func TestCheckCancelled(t *testing.T) {
	c, srv := newChecker(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	got := c.Check(ctx, Input{IP: netip.MustParseAddr("192.0.2.10"), HELO: "mail.example.com", MailFrom: "a@example.com"})
	if got.Result != TempError || got.HELOResult != TempError {
		t.Errorf("got %+v, want temperror for both identities", got)
	}
	if n := srv.Queries(); n != 0 {
		t.Errorf("%d queries after cancellation, want 0", n)
	}
}

// fakeResolver answers TXT from a map and fails everything else with err.
type fakeResolver struct {
	txt map[string][]string
	err error
}

func (f fakeResolver) LookupTXT(_ context.Context, name string) ([]string, error) {
	if txt, ok := f.txt[strings.TrimSuffix(name, ".")]; ok {
		return txt, nil
	}
	return nil, f.err
}

func (f fakeResolver) LookupMX(context.Context, string) ([]*net.MX, error) { return nil, f.err }

func (f fakeResolver) LookupIPAddr(context.Context, string) ([]net.IPAddr, error) {
	return nil, f.err
}

func (f fakeResolver) LookupAddr(context.Context, string) ([]string, error) { return nil, f.err }

// The library classifies errors by a bare type assertion to
// *net.DNSError; the guard must hand it one whatever the resolver returns.
func TestResolverErrors(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"temporary", &net.DNSError{Err: "servfail", IsTemporary: true}, TempError},
		{"wrapped temporary", fmt.Errorf("resolver: %w", &net.DNSError{Err: "servfail", IsTemporary: true}), TempError},
		{"timeout", &net.DNSError{Err: "i/o timeout", IsTimeout: true}, TempError},
		{"wrapped not found", fmt.Errorf("x: %w", &net.DNSError{Err: "no such host", IsNotFound: true}), Fail},
		{"deadline", context.DeadlineExceeded, TempError},
		{"unclassified", errors.New("something broke"), TempError},
	}
	ip := netip.MustParseAddr("192.0.2.1")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Checker{Resolver: fakeResolver{
				txt: map[string][]string{"example.com": {"v=spf1 a:host.example.com -all"}},
				err: tt.err,
			}}
			got := c.Check(context.Background(), Input{IP: ip, MailFrom: "a@example.com"})
			if got.Result != tt.want {
				t.Errorf("got %s (%s), want %s", got.Result, got.Detail, tt.want)
			}
		})
	}
}

func TestQueryName(t *testing.T) {
	long := strings.Repeat("a", 63)
	over := strings.Repeat(long+".", 4) + "example.com" // 267 octets
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"example.com", "example.com", true},
		{"example.com.", "example.com.", true},
		{"a..example.com", "", false},
		{".example.com", "", false},
		{"", "", false},
		{long + "a.example.com", "", false},
		{long + ".example.com", long + ".example.com", true},
		// RFC 7208 §7.3: drop labels from the left until it fits.
		{over, strings.Repeat(long+".", 3) + "example.com", true},
	}
	for _, tt := range tests {
		got, ok := queryName(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("queryName(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
