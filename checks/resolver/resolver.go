// Package resolver is mxguard's one DNS client: a caching, query-coalescing
// stub resolver that talks to recursive resolvers over UDP (EDNS0) with a TCP
// fallback, and gives the mail-authentication checks the lookups they need.
//
// Every error a lookup returns is a plain, unwrapped *net.DNSError, so that
// callers can classify it with errors.As or — as go-msgauth does — with a bare
// type assertion to net.Error:
//
//   - NXDOMAIN and NODATA: IsNotFound (Err "no such host", like package net);
//   - SERVFAIL, REFUSED and any other error rcode: IsTemporary;
//   - no answer in time, or the caller's context ended: IsTimeout and IsTemporary.
//
// Data, NXDOMAIN and NODATA are answers and are cached; temporary failures are
// not, so the next lookup asks again.
package resolver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2"
	"github.com/miekg/dns"
)

// Defaults applied by New for zero Options fields.
const (
	DefaultTimeout     = 2 * time.Second // Options.Timeout
	DefaultAttempts    = 3               // Options.Attempts
	DefaultCacheSize   = 10000           // Options.CacheSize
	DefaultMaxTTL      = time.Hour       // Options.MaxTTL
	DefaultNegativeTTL = 5 * time.Minute // Options.NegativeTTL
)

// ednsSize is the UDP payload size we advertise: the DNS Flag Day 2020
// recommendation, small enough to avoid IP fragmentation on common paths.
const ednsSize = 1232

// Options configures a Resolver. Zero fields take the defaults above.
type Options struct {
	// Servers are the recursive resolvers to ask, "host:port" each. Empty
	// means the nameservers of /etc/resolv.conf.
	Servers []string
	// Timeout bounds one query attempt (one server, UDP plus any TCP retry).
	Timeout time.Duration
	// Attempts is the number of tries, rotating across Servers.
	Attempts int
	// CacheSize is the number of cached (name, type) answers; 0 means
	// DefaultCacheSize and a negative value disables the cache.
	CacheSize int
	// MaxTTL caps how long a positive answer is cached.
	MaxTTL time.Duration
	// NegativeTTL caps how long NXDOMAIN and NODATA are cached, and is the
	// TTL used when the answer carries no SOA (RFC 2308 §5).
	NegativeTTL time.Duration
}

// Stats are cumulative counters of a Resolver's work. Hits, Misses,
// Coalesced and Errors count (name, type) lookups, so one LookupIPAddr
// counts twice (A and AAAA).
type Stats struct {
	Hits      uint64 // lookups answered from the cache
	Misses    uint64 // lookups that had to wait for the network
	Coalesced uint64 // misses that joined an identical query already in flight
	Queries   uint64 // DNS messages sent (each attempt, each TCP retry)
	Errors    uint64 // lookups that ended in a temporary failure or timeout
}

// Resolver is a caching DNS stub resolver. It is safe for concurrent use.
type Resolver struct {
	servers  []string
	timeout  time.Duration
	attempts int
	maxTTL   time.Duration
	negTTL   time.Duration

	cache  *lru.Cache[key, *answer] // nil when caching is disabled
	flight group

	// now is the clock for cache expiry; tests replace it.
	now func() time.Time

	hits, misses, coalesced, queries, errs atomic.Uint64
}

// Servers are the servers the resolver asks, in order.
func (r *Resolver) Servers() []string { return slices.Clone(r.servers) }

// New returns a Resolver for o. It reads /etc/resolv.conf only when
// o.Servers is empty.
func New(o Options) (*Resolver, error) {
	r := &Resolver{
		timeout:  o.Timeout,
		attempts: o.Attempts,
		maxTTL:   o.MaxTTL,
		negTTL:   o.NegativeTTL,
		now:      time.Now,
	}
	if r.timeout <= 0 {
		r.timeout = DefaultTimeout
	}
	if r.attempts <= 0 {
		r.attempts = DefaultAttempts
	}
	if r.maxTTL <= 0 {
		r.maxTTL = DefaultMaxTTL
	}
	if r.negTTL <= 0 {
		r.negTTL = DefaultNegativeTTL
	}

	servers := o.Servers
	if len(servers) == 0 {
		cc, err := dns.ClientConfigFromFile("/etc/resolv.conf")
		if err != nil {
			return nil, fmt.Errorf("resolver: reading resolv.conf: %w", err)
		}
		for _, s := range cc.Servers {
			servers = append(servers, net.JoinHostPort(s, cc.Port))
		}
		if len(servers) == 0 {
			return nil, errors.New("resolver: no nameservers in /etc/resolv.conf")
		}
	}
	for _, s := range servers {
		if _, _, err := net.SplitHostPort(s); err != nil {
			return nil, fmt.Errorf("resolver: server %q: %w", s, err)
		}
	}
	r.servers = slices.Clone(servers)

	size := o.CacheSize
	if size == 0 {
		size = DefaultCacheSize
	}
	if size > 0 {
		c, err := lru.New[key, *answer](size)
		if err != nil {
			return nil, fmt.Errorf("resolver: cache: %w", err)
		}
		r.cache = c
	}
	return r, nil
}

// Stats returns a snapshot of the counters.
func (r *Resolver) Stats() Stats {
	return Stats{
		Hits:      r.hits.Load(),
		Misses:    r.misses.Load(),
		Coalesced: r.coalesced.Load(),
		Queries:   r.queries.Load(),
		Errors:    r.errs.Load(),
	}
}

// LookupTXT returns the TXT records of name, one string per record. The
// character-strings of a record are concatenated without separator, as
// net.LookupTXT does and as SPF (RFC 7208 §3.3) and DKIM (RFC 6376 §3.6.2.2)
// require.
func (r *Resolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	a, err := r.lookup(ctx, name, dns.TypeTXT)
	if err != nil {
		return nil, err
	}
	// The answer is shared with the cache; the caller gets its own slice.
	return slices.Clone(a.txt), nil
}

// LookupMX returns the MX records of name sorted by preference. Unlike package
// net it does not shuffle records of equal preference, so results are
// reproducible; the order among equals is the server's.
func (r *Resolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	a, err := r.lookup(ctx, name, dns.TypeMX)
	if err != nil {
		return nil, err
	}
	out := make([]*net.MX, 0, len(a.rrs))
	for _, rr := range a.rrs {
		mx := rr.(*dns.MX)
		out = append(out, &net.MX{Host: mx.Mx, Pref: mx.Preference})
	}
	slices.SortStableFunc(out, func(a, b *net.MX) int { return int(a.Pref) - int(b.Pref) })
	return out, nil
}

// LookupIPAddr returns the IPv4 and IPv6 addresses of host, A records first.
// The A and AAAA queries run concurrently. As with package net, an IP literal
// is returned as is, and addresses from one family win over a failure of the
// other; with no addresses, a temporary failure of either is reported in
// preference to not-found, because asking again might then succeed.
func (r *Resolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []net.IPAddr{{IP: ip.AsSlice(), Zone: ip.Zone()}}, nil
	}
	var (
		wg    sync.WaitGroup
		v6    *answer
		v6Err error
	)
	var v4 *answer
	var v4Err error
	if IsCacheOnly(ctx) {
		// Nothing can wait: no goroutine for the second lookup.
		v6, v6Err = r.lookup(ctx, host, dns.TypeAAAA)
		v4, v4Err = r.lookup(ctx, host, dns.TypeA)
	} else {
		wg.Go(func() { v6, v6Err = r.lookup(ctx, host, dns.TypeAAAA) })
		v4, v4Err = r.lookup(ctx, host, dns.TypeA)
		wg.Wait()
	}

	var result []net.IPAddr
	if v4Err == nil {
		for _, rr := range v4.rrs {
			result = append(result, net.IPAddr{IP: slices.Clone(rr.(*dns.A).A)})
		}
	}
	if v6Err == nil {
		for _, rr := range v6.rrs {
			result = append(result, net.IPAddr{IP: slices.Clone(rr.(*dns.AAAA).AAAA)})
		}
	}
	if len(result) > 0 {
		return result, nil
	}
	for _, err := range []error{v4Err, v6Err} {
		if de, ok := err.(*net.DNSError); ok && de.IsTemporary {
			return nil, err
		}
	}
	if v4Err != nil {
		return nil, v4Err
	}
	if v6Err != nil {
		return nil, v6Err
	}
	// Both answered with data but neither had an address: cannot happen
	// with the type filter in lookup, but never return (nil, nil).
	return nil, notFound(host, "")
}

// LookupAddr returns the PTR names of addr, each with a trailing dot as
// package net returns them.
func (r *Resolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	arpa, err := dns.ReverseAddr(addr)
	if err != nil {
		return nil, &net.DNSError{Err: "unrecognized address", Name: addr}
	}
	a, err := r.lookup(ctx, arpa, dns.TypePTR)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(a.rrs))
	for _, rr := range a.rrs {
		out = append(out, rr.(*dns.PTR).Ptr)
	}
	return out, nil
}

// LookupA returns the IPv4 addresses of name. DNSBLs (RFC 5782 §2.1) answer
// with A records in 127.0.0.0/8, so this is the one lookup they need.
func (r *Resolver) LookupA(ctx context.Context, name string) ([]netip.Addr, error) {
	a, err := r.lookup(ctx, name, dns.TypeA)
	if err != nil {
		return nil, err
	}
	out := make([]netip.Addr, 0, len(a.rrs))
	for _, rr := range a.rrs {
		if a, ok := netip.AddrFromSlice(rr.(*dns.A).A); ok {
			out = append(out, a.Unmap())
		}
	}
	return out, nil
}

// TXTFunc adapts LookupTXT to go-msgauth's dkim.VerifyOptions.LookupTXT and
// dmarc.LookupOptions.LookupTXT, which take no context: the returned function
// uses ctx. Its errors are unwrapped *net.DNSError, which go-msgauth
// classifies with err.(net.Error), so a SERVFAIL stays a temporary failure.
func (r *Resolver) TXTFunc(ctx context.Context) func(name string) ([]string, error) {
	return func(name string) ([]string, error) { return r.LookupTXT(ctx, name) }
}
