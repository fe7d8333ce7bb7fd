package dnsbl

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mxguard/checks/resolver"
	"mxguard/checks/resolver/dnstest"
)

// testZones are the lists the tests ask. Every list follows RFC 5782 §5:
// 127.0.0.2 is listed and 127.0.0.1 is not.
var testZones = `
$TTL 60
$ORIGIN bl.test.
@                 SOA  ns hostmaster 1 3600 600 86400 60
2.0.0.127         A    127.0.0.2
2.0.0.127         TXT  "Listed for testing; see https://bl.test/lookup?ip=127.0.0.2"
; 2001:db8::1 in nibble form (RFC 5782 §2.4)
1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2 A 127.0.0.3
1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2 TXT "IPv6 listed"
; a name with a TXT record but no A record: NODATA for A
3.0.0.127         TXT  "orphan reason"
; two TXT records, one of them in two strings (joined without separator)
4.0.0.127         A    127.0.0.2
4.0.0.127         TXT  "second" " record"
4.0.0.127         TXT  "first record"
; control characters, a bidi override and invalid UTF-8 in the reason
5.0.0.127         A    127.0.0.2
5.0.0.127         TXT  "bad\007\027[31m red\009\010text\226\128\174 here\255"
; a reason far over 200 bytes
6.0.0.127         A    127.0.0.2
6.0.0.127         TXT  "` + longTXT + `"
; listed, no TXT record
7.0.0.127         A    127.0.0.2

$ORIGIN codes.test.
2.0.0.127         A    127.0.0.2
10.2.0.192        A    127.0.0.10
20.2.0.192        A    127.0.0.20
30.2.0.192        A    127.0.0.4
30.2.0.192        A    127.0.0.10
30.2.0.192        A    127.0.0.11

$ORIGIN err.test.
2.0.0.127         A    127.255.255.254
3.0.0.127         A    127.255.255.252
4.0.0.127         A    127.0.0.2
4.0.0.127         A    127.255.255.255
; what a resolver that rewrites NXDOMAIN to its own web server might say
5.0.0.127         A    192.0.2.99

$ORIGIN wl.test.
2.0.0.127         A    127.0.0.2
2.0.0.127         TXT  "known good"

$ORIGIN fail.test.
2.0.0.127         A    127.0.0.2
`

// longTXT is 26×10 = 260 bytes of reason.
var longTXT = strings.Repeat("abcdefghi ", 26)

// newServer starts a dnstest server with testZones and returns it and a
// resolver that asks it, giving up on a silent server after timeout.
func newServer(t testing.TB, timeout time.Duration) (*dnstest.Server, *resolver.Resolver) {
	t.Helper()
	s := dnstest.Start(t, testZones)
	r, err := resolver.New(resolver.Options{
		Servers:  []string{s.Addr()},
		Timeout:  timeout,
		Attempts: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s, r
}

// diff returns "" when got equals want, or both, one field a line.
func diff(got, want Result) string {
	if reflect.DeepEqual(got, want) {
		return ""
	}
	return fmt.Sprintf("got:\n%s\nwant:\n%s", show(got), show(want))
}

func show(r Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  Score: %v  Temperror: %v\n", r.Score, r.Temperror)
	for _, l := range r.Listed {
		fmt.Fprintf(&b, "  Listed: %#v\n", l)
	}
	for _, e := range r.Errors {
		fmt.Fprintf(&b, "  Error: %q\n", e)
	}
	return b.String()
}

func TestCheck(t *testing.T) {
	bl := Zone{Zone: "bl.test", Weight: 5}
	codes := Zone{Zone: "codes.test", Weight: 2, Match: mustCodes(t, "127.0.0.2-127.0.0.11")}
	tests := []struct {
		name  string
		zones []Zone
		ip    string
		want  Result
	}{
		{
			name:  "listed IPv4 with code and reason",
			zones: []Zone{bl},
			ip:    "127.0.0.2",
			want: Result{Score: 5, Listed: []Listing{{
				Zone: "bl.test", Codes: []string{"127.0.0.2"}, Weight: 5,
				Reason: "Listed for testing; see https://bl.test/lookup?ip=127.0.0.2",
			}}},
		},
		{
			// RFC 5782 §5: 127.0.0.1 must not be listed.
			name:  "not listed",
			zones: []Zone{bl},
			ip:    "127.0.0.1",
			want:  Result{},
		},
		{
			name:  "NODATA is not listed",
			zones: []Zone{bl},
			ip:    "127.0.0.3",
			want:  Result{},
		},
		{
			name:  "IPv6 nibble form",
			zones: []Zone{bl},
			ip:    "2001:db8::1",
			want: Result{Score: 5, Listed: []Listing{{
				Zone: "bl.test", Codes: []string{"127.0.0.3"}, Reason: "IPv6 listed", Weight: 5,
			}}},
		},
		{
			name:  "IPv6 with a scope zone",
			zones: []Zone{bl},
			ip:    "2001:db8::1%eth0",
			want: Result{Score: 5, Listed: []Listing{{
				Zone: "bl.test", Codes: []string{"127.0.0.3"}, Reason: "IPv6 listed", Weight: 5,
			}}},
		},
		{
			name:  "IPv4-mapped IPv6 asked as IPv4",
			zones: []Zone{bl},
			ip:    "::ffff:127.0.0.2",
			want: Result{Score: 5, Listed: []Listing{{
				Zone: "bl.test", Codes: []string{"127.0.0.2"}, Weight: 5,
				Reason: "Listed for testing; see https://bl.test/lookup?ip=127.0.0.2",
			}}},
		},
		{
			name:  "code in Match",
			zones: []Zone{codes},
			ip:    "192.0.2.10",
			want:  Result{Score: 2, Listed: []Listing{{Zone: "codes.test", Codes: []string{"127.0.0.10"}, Weight: 2}}},
		},
		{
			name:  "code outside Match",
			zones: []Zone{codes},
			ip:    "192.0.2.20",
			want:  Result{},
		},
		{
			name:  "code outside Match without Match",
			zones: []Zone{{Zone: "codes.test", Weight: 2}},
			ip:    "192.0.2.20",
			want:  Result{Score: 2, Listed: []Listing{{Zone: "codes.test", Codes: []string{"127.0.0.20"}, Weight: 2}}},
		},
		{
			name:  "only matching codes reported",
			zones: []Zone{{Zone: "codes.test", Weight: 1, Match: mustCodes(t, "127.0.0.10,127.0.0.11")}},
			ip:    "192.0.2.30",
			want:  Result{Score: 1, Listed: []Listing{{Zone: "codes.test", Codes: []string{"127.0.0.10", "127.0.0.11"}, Weight: 1}}},
		},
		{
			name:  "error code public resolver",
			zones: []Zone{{Zone: "err.test", Weight: 5}},
			ip:    "127.0.0.2",
			want:  Result{Errors: []string{"err.test: error code 127.255.255.254"}},
		},
		{
			name:  "error code even when Match covers it",
			zones: []Zone{{Zone: "err.test", Weight: 5, Match: mustCodes(t, "127.0.0.0/8")}},
			ip:    "127.0.0.3",
			want:  Result{Errors: []string{"err.test: error code 127.255.255.252"}},
		},
		{
			name:  "error code beside a listing code",
			zones: []Zone{{Zone: "err.test", Weight: 5}},
			ip:    "127.0.0.4",
			want:  Result{Errors: []string{"err.test: error code 127.255.255.255"}},
		},
		{
			name:  "answer outside 127/8",
			zones: []Zone{{Zone: "err.test", Weight: 5}},
			ip:    "127.0.0.5",
			want:  Result{Errors: []string{"err.test: error code 192.0.2.99"}},
		},
		{
			name:  "allow list lowers the score",
			zones: []Zone{{Zone: "bl.test", Weight: 3}, {Zone: "wl.test", Weight: -5}},
			ip:    "127.0.0.2",
			want: Result{Score: -2, Listed: []Listing{
				{Zone: "bl.test", Codes: []string{"127.0.0.2"}, Weight: 3, Reason: "Listed for testing; see https://bl.test/lookup?ip=127.0.0.2"},
				{Zone: "wl.test", Codes: []string{"127.0.0.2"}, Weight: -5, Reason: "known good"},
			}},
		},
		{
			name:  "configuration order kept",
			zones: []Zone{{Zone: "wl.test", Weight: -5}, {Zone: "err.test", Weight: 1}, {Zone: "codes.test", Weight: 1}, {Zone: "bl.test.", Weight: 3}},
			ip:    "127.0.0.2",
			want: Result{Score: -1, Listed: []Listing{
				{Zone: "wl.test", Codes: []string{"127.0.0.2"}, Weight: -5, Reason: "known good"},
				{Zone: "codes.test", Codes: []string{"127.0.0.2"}, Weight: 1},
				{Zone: "bl.test.", Codes: []string{"127.0.0.2"}, Weight: 3, Reason: "Listed for testing; see https://bl.test/lookup?ip=127.0.0.2"},
			}, Errors: []string{"err.test: error code 127.255.255.254"}},
		},
		{
			name:  "TXT records sorted and joined",
			zones: []Zone{bl},
			ip:    "127.0.0.4",
			want:  Result{Score: 5, Listed: []Listing{{Zone: "bl.test", Codes: []string{"127.0.0.2"}, Weight: 5, Reason: "first record; second record"}}},
		},
		{
			name:  "reason sanitised",
			zones: []Zone{bl},
			ip:    "127.0.0.5",
			want:  Result{Score: 5, Listed: []Listing{{Zone: "bl.test", Codes: []string{"127.0.0.2"}, Weight: 5, Reason: "bad[31m red text here"}}},
		},
		{
			name:  "reason truncated",
			zones: []Zone{bl},
			ip:    "127.0.0.6",
			want:  Result{Score: 5, Listed: []Listing{{Zone: "bl.test", Codes: []string{"127.0.0.2"}, Weight: 5, Reason: strings.TrimSpace(longTXT[:200])}}},
		},
		{
			name:  "listed without TXT",
			zones: []Zone{bl},
			ip:    "127.0.0.7",
			want:  Result{Score: 5, Listed: []Listing{{Zone: "bl.test", Codes: []string{"127.0.0.2"}, Weight: 5}}},
		},
		{
			name:  "invalid zone name",
			zones: []Zone{{Zone: "bad..test", Weight: 1}, {Zone: strings.Repeat("x", 63) + "." + strings.Repeat("y", 63) + "." + strings.Repeat("z", 63), Weight: 1}},
			ip:    "2001:db8::1",
			want: Result{Errors: []string{
				"bad..test: invalid zone name",
				strings.Repeat("x", 63) + "." + strings.Repeat("y", 63) + "." + strings.Repeat("z", 63) + ": invalid zone name",
			}},
		},
		{
			name:  "no zones",
			zones: nil,
			ip:    "127.0.0.2",
			want:  Result{},
		},
	}
	_, r := newServer(t, time.Second)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Checker{Lookup: r, Zones: tt.zones}
			got := c.Check(t.Context(), netip.MustParseAddr(tt.ip))
			if d := diff(got, tt.want); d != "" {
				t.Error(d)
			}
		})
	}
}

func TestInvalidAddress(t *testing.T) {
	_, r := newServer(t, time.Second)
	c := &Checker{Lookup: r, Zones: []Zone{{Zone: "bl.test", Weight: 1}}}
	got := c.Check(t.Context(), netip.Addr{})
	want := Result{Errors: []string{"bl.test: invalid client address"}}
	if d := diff(got, want); d != "" {
		t.Error(d)
	}
}

func TestTemporaryFailures(t *testing.T) {
	s, r := newServer(t, 200*time.Millisecond)
	s.ServFail("2.0.0.127.fail.test")
	s.Drop("2.0.0.127.bl.test")
	s.Refuse("2.0.0.127.wl.test")
	c := &Checker{Lookup: r, Zones: []Zone{
		{Zone: "bl.test", Weight: 5},    // timeout
		{Zone: "codes.test", Weight: 1}, // answers
		{Zone: "fail.test", Weight: 5},  // SERVFAIL
		{Zone: "wl.test", Weight: -5},   // REFUSED
	}}
	got := c.Check(t.Context(), netip.MustParseAddr("127.0.0.2"))
	want := Result{
		Score:     1,
		Listed:    []Listing{{Zone: "codes.test", Codes: []string{"127.0.0.2"}, Weight: 1}},
		Errors:    []string{"bl.test: temperror", "fail.test: temperror", "wl.test: temperror"},
		Temperror: true,
	}
	if d := diff(got, want); d != "" {
		t.Error(d)
	}
}

func TestCancelledContext(t *testing.T) {
	_, r := newServer(t, time.Second)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	c := &Checker{Lookup: r, Zones: []Zone{{Zone: "bl.test", Weight: 5}}}
	got := c.Check(ctx, netip.MustParseAddr("127.0.0.2"))
	want := Result{Errors: []string{"bl.test: temperror"}, Temperror: true}
	if d := diff(got, want); d != "" {
		t.Error(d)
	}
}

// fakeLookup answers from maps and counts calls; a missing A name is
// NXDOMAIN, a missing TXT name is a SERVFAIL.
type fakeLookup struct {
	a     map[string][]netip.Addr
	txt   map[string][]string
	aErr  error
	panic string // panic on LookupA of this name

	aCalls, txtCalls atomic.Int64
}

func (f *fakeLookup) LookupA(_ context.Context, name string) ([]netip.Addr, error) {
	f.aCalls.Add(1)
	if name == f.panic {
		panic("lookup exploded")
	}
	if f.aErr != nil {
		return nil, f.aErr
	}
	if a, ok := f.a[name]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

func (f *fakeLookup) LookupTXT(_ context.Context, name string) ([]string, error) {
	f.txtCalls.Add(1)
	if t, ok := f.txt[name]; ok {
		return t, nil
	}
	return nil, &net.DNSError{Err: "server misbehaving", Name: name, IsTemporary: true}
}

func TestLookupErrors(t *testing.T) {
	ip := netip.MustParseAddr("127.0.0.2")
	zones := []Zone{{Zone: "bl.test", Weight: 1}}
	tests := []struct {
		name string
		err  error
		want Result
	}{
		{
			name: "wrapped not found",
			err:  fmt.Errorf("wrapped: %w", &net.DNSError{Err: "no such host", IsNotFound: true}),
			want: Result{},
		},
		{
			name: "not a DNSError",
			err:  errors.New("something odd"),
			want: Result{Errors: []string{"bl.test: temperror"}, Temperror: true},
		},
		{
			name: "timeout",
			err:  &net.DNSError{Err: "i/o timeout", IsTimeout: true, IsTemporary: true},
			want: Result{Errors: []string{"bl.test: temperror"}, Temperror: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Checker{Lookup: &fakeLookup{aErr: tt.err}, Zones: zones}
			if d := diff(c.Check(t.Context(), ip), tt.want); d != "" {
				t.Error(d)
			}
		})
	}
}

func TestTXTFailureKeepsListing(t *testing.T) {
	f := &fakeLookup{a: map[string][]netip.Addr{
		// Duplicates and IPv4-mapped answers are tidied.
		"2.0.0.127.bl.test": {netip.MustParseAddr("127.0.0.3"), netip.MustParseAddr("::ffff:127.0.0.2"), netip.MustParseAddr("127.0.0.3")},
	}}
	c := &Checker{Lookup: f, Zones: []Zone{{Zone: "bl.test", Weight: 1}}}
	got := c.Check(t.Context(), netip.MustParseAddr("127.0.0.2"))
	want := Result{Score: 1, Listed: []Listing{{Zone: "bl.test", Codes: []string{"127.0.0.2", "127.0.0.3"}, Weight: 1}}}
	if d := diff(got, want); d != "" {
		t.Error(d)
	}
}

func TestTXTOnlyWhenListed(t *testing.T) {
	f := &fakeLookup{
		a:   map[string][]netip.Addr{"2.0.0.127.a.test": {netip.MustParseAddr("127.0.0.2")}},
		txt: map[string][]string{"2.0.0.127.a.test": {"why"}},
	}
	c := &Checker{Lookup: f, Zones: []Zone{
		{Zone: "a.test", Weight: 1},
		{Zone: "b.test", Weight: 1},                                   // not listed
		{Zone: "a.test", Weight: 1, Match: mustCodes(t, "127.0.0.3")}, // listed, code not wanted
	}}
	c.Check(t.Context(), netip.MustParseAddr("127.0.0.2"))
	if got := f.aCalls.Load(); got != 3 {
		t.Errorf("%d A lookups, want 3", got)
	}
	if got := f.txtCalls.Load(); got != 1 {
		t.Errorf("%d TXT lookups, want 1: only for the one listing", got)
	}
}

// TestPanicReachesCaller: a panic in Lookup happens in one of Check's
// goroutines; it must come out of Check, in the caller's goroutine, where
// the check runner can recover it, and not crash the process.
func TestPanicReachesCaller(t *testing.T) {
	f := &fakeLookup{panic: "2.0.0.127.b.test"}
	c := &Checker{Lookup: f, Zones: []Zone{{Zone: "a.test"}, {Zone: "b.test"}}}
	defer func() {
		if p := recover(); p != "lookup exploded" {
			t.Errorf("recovered %v, want the Lookup's panic", p)
		}
	}()
	c.Check(t.Context(), netip.MustParseAddr("127.0.0.2"))
	t.Error("Check returned normally")
}

// concurrency wraps a Lookup and records the most lookups in flight at once.
type concurrency struct {
	Lookup
	mu            sync.Mutex
	now, maxA     int
	nowTXT, maxTX int
}

func (c *concurrency) LookupA(ctx context.Context, name string) ([]netip.Addr, error) {
	c.mu.Lock()
	c.now++
	c.maxA = max(c.maxA, c.now)
	c.mu.Unlock()
	defer func() { c.mu.Lock(); c.now--; c.mu.Unlock() }()
	return c.Lookup.LookupA(ctx, name)
}

func (c *concurrency) LookupTXT(ctx context.Context, name string) ([]string, error) {
	c.mu.Lock()
	c.nowTXT++
	c.maxTX = max(c.maxTX, c.nowTXT)
	c.mu.Unlock()
	defer func() { c.mu.Lock(); c.nowTXT--; c.mu.Unlock() }()
	return c.Lookup.LookupTXT(ctx, name)
}

func TestZonesConcurrent(t *testing.T) {
	const delay = 150 * time.Millisecond
	s, r := newServer(t, 2*time.Second)
	names := []string{"bl.test", "wl.test", "codes.test"}
	for _, z := range names {
		// Delay applies to A and TXT alike.
		s.Delay("2.0.0.127."+z, delay)
	}
	lk := &concurrency{Lookup: r}
	c := &Checker{Lookup: lk, Zones: []Zone{{Zone: names[0], Weight: 1}, {Zone: names[1], Weight: 1}, {Zone: names[2], Weight: 1}}}

	start := time.Now()
	got := c.Check(t.Context(), netip.MustParseAddr("127.0.0.2"))
	elapsed := time.Since(start)

	if len(got.Listed) != 3 || len(got.Errors) != 0 {
		t.Fatalf("want three listings:\n%s", show(got))
	}
	// Each of the three zones holds every lookup for delay, so all three
	// A lookups, and then all three TXT lookups (codes.test has no TXT
	// record, but is listed and so asked), must have been in flight
	// together.
	if lk.maxA != 3 || lk.maxTX != 3 {
		t.Errorf("at most %d A and %d TXT lookups in flight at once, want 3 and 3", lk.maxA, lk.maxTX)
	}
	// One A then one TXT per zone: 2×delay concurrently, 6×delay in turn.
	if elapsed >= 4*delay {
		t.Errorf("Check took %v; the zones were not asked concurrently (sequential: %v)", elapsed, 6*delay)
	}
}

func TestQueryName(t *testing.T) {
	tests := []struct {
		ip, zone, want string
	}{
		// RFC 5782 §2.1.
		{"192.0.2.99", "bl.test", "99.2.0.192.bl.test"},
		{"127.0.0.2", "zen.spamhaus.org.", "2.0.0.127.zen.spamhaus.org"},
		{"::ffff:10.1.2.3", "bl.test", "3.2.1.10.bl.test"},
		// RFC 5782 §2.4: 32 nibbles, zeros written out.
		{"2001:db8:1:2:3:4:567:89ab", "bl.test", "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.bl.test"},
		{"::1", "bl.test", "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.bl.test"},
	}
	for _, tt := range tests {
		if got := queryName(netip.MustParseAddr(tt.ip), tt.zone); got != tt.want {
			t.Errorf("queryName(%s, %s) = %q, want %q", tt.ip, tt.zone, got, tt.want)
		}
	}
}

func TestReason(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want string
	}{
		{"none", nil, ""},
		{"one", []string{"listed"}, "listed"},
		{"sorted and joined", []string{"b", "a"}, "a; b"},
		{"empty records skipped", []string{"", "\x00\x01", "x"}, "x"},
		{"controls", []string{"a\x00b\x1bc\x7fd"}, "abcd"},
		{"line breaks are spaces", []string{"one\r\ntwo\tthree  four "}, "one two three four"},
		{"smtp injection", []string{"x\r\n250 OK\r\n"}, "x 250 OK"},
		{"invalid utf-8", []string{"a\xffb\xc3"}, "ab"},
		{"bidi override", []string{"abc\u202edef"}, "abcdef"},
		{"unicode kept", []string{"gesperrt für Spam"}, "gesperrt für Spam"},
		{"truncated", []string{strings.Repeat("x", 300)}, strings.Repeat("x", 200)},
		// "x" and 99 × "é" (2 bytes each) are 199 bytes; the 100th "é"
		// would end past 200.
		{"truncated on a rune boundary", []string{"x" + strings.Repeat("é", 150)}, "x" + strings.Repeat("é", 99)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := reason(tt.in)
			if got != tt.want {
				t.Errorf("reason(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if len(got) > maxReason {
				t.Errorf("reason is %d bytes, over %d", len(got), maxReason)
			}
		})
	}
}

func mustCodes(t testing.TB, s string) []CodeRange {
	t.Helper()
	c, err := ParseCodes(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
