package resolver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"mxguard/checks/resolver/dnstest"
)

// startServer serves testdata/example.zone on loopback.
func startServer(t testing.TB) *dnstest.Server {
	t.Helper()
	return dnstest.StartFiles(t, "testdata/example.zone")
}

// newResolver returns a Resolver asking only the given test servers, with
// short timeouts so failure cases stay fast.
func newResolver(t testing.TB, o Options, servers ...*dnstest.Server) *Resolver {
	t.Helper()
	for _, s := range servers {
		o.Servers = append(o.Servers, s.Addr())
	}
	if len(o.Servers) == 0 {
		t.Fatal("newResolver: no servers; tests must never read /etc/resolv.conf")
	}
	if o.Timeout == 0 {
		o.Timeout = 200 * time.Millisecond
	}
	if o.Attempts == 0 {
		o.Attempts = 2
	}
	r, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// clock is an adjustable time source for cache-expiry tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func withClock(r *Resolver) *clock {
	c := &clock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	r.now = c.now
	return c
}

func TestErrorContract(t *testing.T) {
	srv := startServer(t)
	srv.ServFail("servfail.example.com")
	srv.Refuse("refused.example.com")
	srv.Drop("dropped.example.com")
	r := newResolver(t, Options{Timeout: 100 * time.Millisecond}, srv)

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()

	tests := []struct {
		name                         string
		ctx                          context.Context
		qname                        string
		wantErr                      bool
		notFound, temporary, timeout bool
		wantErrText                  string
	}{
		{name: "found", qname: "example.com"},
		{name: "nxdomain", qname: "nope.example.com", wantErr: true, notFound: true, wantErrText: "no such host"},
		{name: "nodata", qname: "mx1.example.com", wantErr: true, notFound: true, wantErrText: "no such host"},
		{name: "servfail", qname: "servfail.example.com", wantErr: true, temporary: true},
		{name: "refused", qname: "refused.example.com", wantErr: true, temporary: true},
		{name: "dropped", qname: "dropped.example.com", wantErr: true, temporary: true, timeout: true},
		{name: "ctx cancelled", ctx: cancelled, qname: "example.com.", wantErr: true, temporary: true, timeout: true},
		{name: "invalid name", qname: strings.Repeat("a", 64) + ".example.com", wantErr: true, notFound: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := tt.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			_, err := r.LookupTXT(ctx, tt.qname)
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("LookupTXT(%q) = %v, want no error", tt.qname, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("LookupTXT(%q) succeeded, want an error", tt.qname)
			}
			// The contract: a bare type assertion works, as go-msgauth
			// and spf use it; no wrapping.
			de, ok := err.(*net.DNSError)
			if !ok {
				t.Fatalf("error is %T, want *net.DNSError unwrapped", err)
			}
			ne, ok := err.(net.Error)
			if !ok {
				t.Fatalf("err.(net.Error) failed on %T", err)
			}
			var as *net.DNSError
			if !errors.As(err, &as) || as != de {
				t.Errorf("errors.As did not find the *net.DNSError itself")
			}
			got := [3]bool{de.IsNotFound, de.IsTemporary, de.IsTimeout}
			want := [3]bool{tt.notFound, tt.temporary, tt.timeout}
			if got != want {
				t.Errorf("{IsNotFound, IsTemporary, IsTimeout} = %v, want %v (err %v)", got, want, err)
			}
			//lint:ignore SA1019 go-msgauth still calls Temporary, so the contract includes it.
			temporary := ne.Temporary()
			if temporary != tt.temporary || ne.Timeout() != tt.timeout {
				t.Errorf("net.Error Temporary()=%v Timeout()=%v, want %v %v", temporary, ne.Timeout(), tt.temporary, tt.timeout)
			}
			if de.Name != tt.qname {
				t.Errorf("Name = %q, want %q", de.Name, tt.qname)
			}
			if tt.wantErrText != "" && de.Err != tt.wantErrText {
				t.Errorf("Err = %q, want %q", de.Err, tt.wantErrText)
			}
		})
	}
	if _, err := r.LookupTXT(cancelled, "example.com"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled lookup: errors.Is(err, context.Canceled) = false for %v", err)
	}
}

func TestLookupTXTJoinsStrings(t *testing.T) {
	srv := startServer(t)
	r := newResolver(t, Options{}, srv)
	got, err := r.LookupTXT(context.Background(), "example.com")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"v=spf1 include:_spf.example.net -all"}
	if !slices.Equal(got, want) {
		t.Errorf("LookupTXT = %q, want %q", got, want)
	}
}

func TestTXTFunc(t *testing.T) {
	srv := startServer(t)
	srv.ServFail("sf.example.com")
	r := newResolver(t, Options{}, srv)
	lookup := r.TXTFunc(context.Background())
	if got, err := lookup("example.com"); err != nil || len(got) != 1 {
		t.Fatalf("TXTFunc(example.com) = %q, %v", got, err)
	}
	_, err := lookup("sf.example.com")
	// What go-msgauth does to tell temperror from permerror.
	//lint:ignore SA1019 go-msgauth still calls Temporary, so the contract includes it.
	if ne, ok := err.(net.Error); !ok || !ne.Temporary() {
		t.Errorf("SERVFAIL through TXTFunc: %#v is not a temporary net.Error", err)
	}
}

func TestLookupMXSorted(t *testing.T) {
	srv := startServer(t)
	r := newResolver(t, Options{}, srv)
	mxs, err := r.LookupMX(context.Background(), "example.com")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, mx := range mxs {
		got = append(got, fmt.Sprintf("%d %s", mx.Pref, mx.Host))
	}
	want := []string{"10 mx1.example.com.", "20 mx2.example.com.", "30 mx3.example.com."}
	if !slices.Equal(got, want) {
		t.Errorf("LookupMX = %q, want %q", got, want)
	}
}

func TestLookupIPAddr(t *testing.T) {
	srv := startServer(t)
	srv.ServFail("v6only.example.com") // both families fail: temporary wins
	r := newResolver(t, Options{}, srv)
	ctx := context.Background()

	tests := []struct {
		host    string
		want    []string
		wantErr string // "notfound" or "temporary"
	}{
		{host: "mx1.example.com", want: []string{"192.0.2.1", "2001:db8::1"}},
		{host: "mx2.example.com", want: []string{"192.0.2.2"}}, // AAAA is NODATA
		{host: "192.0.2.77", want: []string{"192.0.2.77"}},     // literal, no query
		{host: "nope.example.com", wantErr: "notfound"},
		{host: "v6only.example.com", wantErr: "temporary"},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			addrs, err := r.LookupIPAddr(ctx, tt.host)
			if tt.wantErr != "" {
				de, ok := err.(*net.DNSError)
				if !ok {
					t.Fatalf("err = %#v, want *net.DNSError", err)
				}
				if (tt.wantErr == "notfound") != de.IsNotFound || (tt.wantErr == "temporary") != de.IsTemporary {
					t.Errorf("err = %+v, want %s", de, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, a := range addrs {
				got = append(got, a.IP.String())
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("LookupIPAddr = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLookupAddr(t *testing.T) {
	srv := startServer(t)
	r := newResolver(t, Options{}, srv)
	got, err := r.LookupAddr(context.Background(), "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"mx1.example.com."}; !slices.Equal(got, want) {
		t.Errorf("LookupAddr = %q, want %q", got, want)
	}
	if _, err := r.LookupAddr(context.Background(), "192.0.2.99"); !isNotFound(err) {
		t.Errorf("LookupAddr(unlisted) err = %v, want not found", err)
	}
	if _, err := r.LookupAddr(context.Background(), "not-an-ip"); err == nil {
		t.Error("LookupAddr(not-an-ip) succeeded")
	}
}

func TestLookupA(t *testing.T) {
	srv := startServer(t)
	r := newResolver(t, Options{}, srv)
	got, err := r.LookupA(context.Background(), "2.0.0.127.bl.example")
	if err != nil {
		t.Fatal(err)
	}
	if want := []netip.Addr{netip.MustParseAddr("127.0.0.2")}; !slices.Equal(got, want) {
		t.Errorf("LookupA = %v, want %v", got, want)
	}
	if _, err := r.LookupA(context.Background(), "3.0.0.127.bl.example"); !isNotFound(err) {
		t.Errorf("unlisted: err = %v, want not found", err)
	}
}

func TestCNAMEChainAndCase(t *testing.T) {
	srv := startServer(t)
	r := newResolver(t, Options{}, srv)
	ctx := context.Background()
	for _, name := range []string{"alias.example.com", "ALIAS.Example.COM.", "alias2.example.com"} {
		got, err := r.LookupA(ctx, name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if want := []netip.Addr{netip.MustParseAddr("192.0.2.1")}; !slices.Equal(got, want) {
			t.Errorf("LookupA(%s) = %v, want %v", name, got, want)
		}
	}
	// Names are case-insensitive, so the upper-case lookup was a cache hit.
	if h := r.Stats().Hits; h != 1 {
		t.Errorf("Hits = %d, want 1 (ALIAS.Example.COM. served from the alias.example.com entry)", h)
	}
	// A CNAME to a name that does not exist is NXDOMAIN (RFC 6604).
	if _, err := r.LookupA(ctx, "dangling.example.com"); !isNotFound(err) {
		t.Errorf("dangling CNAME: err = %v, want not found", err)
	}
}

func TestWildcardAndEmptyNonTerminal(t *testing.T) {
	srv := startServer(t)
	r := newResolver(t, Options{}, srv)
	ctx := context.Background()

	got, err := r.LookupTXT(ctx, "anything.wild.example.com")
	if err != nil || !slices.Equal(got, []string{"wildcard"}) {
		t.Errorf("wildcard TXT = %q, %v; want [wildcard]", got, err)
	}
	got, err = r.LookupTXT(ctx, "deeper.anything.wild.example.com")
	if err != nil || !slices.Equal(got, []string{"wildcard"}) {
		t.Errorf("deeper wildcard TXT = %q, %v; want [wildcard]", got, err)
	}
	for _, tt := range []struct{ name, want string }{
		{"wild.example.com", "nodata"},    // exists as the wildcard's parent
		{"b.ent.example.com", "nodata"},   // empty non-terminal
		{"x.ent.example.com", "nxdomain"}, // no wildcard at ent
	} {
		_, err := r.LookupTXT(ctx, tt.name)
		if !isNotFound(err) {
			t.Errorf("%s: err = %v, want not found (%s)", tt.name, err, tt.want)
		}
	}
}

func TestTruncatedAnswerRetriedOverTCP(t *testing.T) {
	srv := startServer(t)
	// 40 records of ~60 bytes: well over the 1232 bytes we advertise.
	var zone strings.Builder
	var want []string
	for i := range 40 {
		s := fmt.Sprintf("record %02d %s", i, strings.Repeat("x", 50))
		want = append(want, s)
		fmt.Fprintf(&zone, "big.example.com. 300 IN TXT %q\n", s)
	}
	if err := srv.AddZone(zone.String()); err != nil {
		t.Fatal(err)
	}
	r := newResolver(t, Options{}, srv)
	got, err := r.LookupTXT(context.Background(), "big.example.com")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("got %d records, want %d: %q", len(got), len(want), got)
	}
	// One UDP query answered with TC, one TCP query with the data.
	if q := srv.Queries(); q != 2 {
		t.Errorf("server answered %d queries, want 2 (UDP truncated + TCP)", q)
	}
	if q := r.Stats().Queries; q != 2 {
		t.Errorf("Stats().Queries = %d, want 2", q)
	}
}

func TestRetryAcrossServers(t *testing.T) {
	first := startServer(t)
	first.Drop("example.com")
	second := startServer(t)
	r := newResolver(t, Options{Timeout: 100 * time.Millisecond, Attempts: 2}, first, second)
	got, err := r.LookupTXT(context.Background(), "example.com")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Errorf("got %q", got)
	}
	if a, b := first.Queries(), second.Queries(); a != 0 || b != 1 {
		t.Errorf("queries answered: first %d, second %d; want 0, 1", a, b)
	}
	if q := r.Stats().Queries; q != 2 {
		t.Errorf("Stats().Queries = %d, want 2", q)
	}
}

func TestServFailTriesNextServer(t *testing.T) {
	first := startServer(t)
	first.ServFail("example.com")
	second := startServer(t)
	r := newResolver(t, Options{}, first, second)
	if _, err := r.LookupTXT(context.Background(), "example.com"); err != nil {
		t.Fatalf("SERVFAIL from the first server was not retried on the second: %v", err)
	}
}

func isNotFound(err error) bool {
	de, ok := err.(*net.DNSError)
	return ok && de.IsNotFound && !de.IsTemporary
}

// spfResolver mirrors blitiri.com.ar/go/spf's DNSResolver, so that the
// compiler checks we still fit it without this package importing spf.
type spfResolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
	LookupAddr(ctx context.Context, addr string) (names []string, err error)
}

var _ spfResolver = (*Resolver)(nil)

func TestEscapes(t *testing.T) {
	if got := unescapeTXT(`v=spf1 \"q\" \\ \239\187`); got != "v=spf1 \"q\" \\ \xef\xbb" {
		t.Errorf("unescapeTXT: %q", got)
	}
	if got := escapeName("a b.example."); got != `a\032b.example.` {
		t.Errorf("escapeName: %q", got)
	}
	if got := escapeName("plain.example."); got != "plain.example." {
		t.Errorf("escapeName changed a plain name: %q", got)
	}
}
