// Package uribl looks up the URLs of a message in URI block lists: domain
// lists such as Spamhaus DBL or SURBL (RFC 5782 §2.3) for host names, the
// same zones as IP lists (RFC 5782 §2.1) for URLs whose host is an
// address.
//
// Like every check, it reports evidence and never decides: which lists
// list which domains, and a score, the sum of the weights of the lists
// that list any. A list that cannot answer is an error, never a listing.
package uribl

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"

	"github.com/miekg/dns"

	"mxguard/checks/dnsbl"
)

// parallel bounds the queries in flight for one message: max_domains
// times the zones can be a few hundred.
const parallel = 8

// loopback and errorRange are where RFC 5782 §2.1 puts return codes, and
// the range list operators answer from when they refuse a query (as the
// dnsbl check reads them). refused is 127.0.0.1: the loopback address, not
// a code (codes start at 127.0.0.2, RFC 5782 §2.1 and its test entry in
// §5), and what SURBL and URIBL answer a query they refuse: in a bitmask
// list it would read as bit 1, a sub-list.
var (
	loopback   = netip.MustParsePrefix("127.0.0.0/8")
	errorRange = netip.MustParsePrefix("127.255.255.0/24")
	refused    = netip.MustParseAddr("127.0.0.1")
)

// Zone is one list to ask: a DNS list as the dnsbl check has them, and,
// for a list whose answers are bitmasks, the bits that count.
type Zone struct {
	dnsbl.Zone
	// Bitmask, when not 0, makes an answer a listing when its last octet
	// has any of these bits (SURBL: 127.0.0.X, X the sum of the bits of
	// the sub-lists that hold the domain); Match is then empty.
	Bitmask byte
}

// matches reports whether the return code a counts as a listing in z. The
// caller has set the error codes aside.
func (z Zone) matches(a netip.Addr) bool {
	if z.Bitmask != 0 {
		return a.As4()[3]&z.Bitmask != 0
	}
	return len(z.Match) == 0 || slices.ContainsFunc(z.Match, func(r dnsbl.CodeRange) bool { return r.Contains(a) })
}

// Listing is one zone's listing of one domain or address.
type Listing struct {
	// Name is the registered domain or the address.
	Name string
	// Zone is the zone as configured.
	Zone string
	// Codes are the answers that counted, in address order
	// ("127.0.0.68").
	Codes []string
	// Weight is the zone's weight.
	Weight float64
}

// Result is what the lookups of one message gave.
type Result struct {
	Found
	// Score is the sum of the weights of the zones that list any domain
	// or address; each zone counts once however many it lists.
	Score float64
	// Listed are those zones, in configuration order.
	Listed []string
	// Listings are the listings, zone by zone in configuration order,
	// domains before addresses, each in order of first sight.
	Listings []Listing
	// Errors are the queries that failed, as DOMAIN=ZONE: temperror or
	// DOMAIN=ZONE: error code 127.255.255.254. None is a listing.
	Errors []string
}

// ListedDomains are the listings as DOMAIN=ZONE (or ADDRESS=ZONE).
func (res Result) ListedDomains() []string {
	var out []string
	for _, l := range res.Listings {
		out = append(out, l.Name+"="+l.Zone)
	}
	return out
}

// Codes are the listings with their codes, as DOMAIN=ZONE=CODE.
func (res Result) Codes() []string {
	var out []string
	for _, l := range res.Listings {
		for _, c := range l.Codes {
			out = append(out, l.Name+"="+l.Zone+"="+c)
		}
	}
	return out
}

// Checker looks a message's URLs up. It is safe for concurrent use if
// Lookup is.
type Checker struct {
	Lookup     dnsbl.Lookup
	Zones      []Zone
	MaxDomains int
}

// query is one name asked of one zone.
type query struct {
	name, zone string // what is reported: domain or address, zone
	qname      string
	z          Zone
	codes      []string // the answers that count: a listing
	err        string
}

// Lookups asks every zone about every domain and address of f.
func (c *Checker) Lookups(ctx context.Context, f Found) Result {
	var qs []*query
	for _, z := range c.Zones {
		for _, d := range f.Domains {
			qs = append(qs, &query{name: d, zone: z.Zone.Zone, z: z, qname: d + "." + trimDot(z.Zone.Zone)})
		}
		for _, a := range f.IPs {
			qs = append(qs, &query{name: a.String(), zone: z.Zone.Zone, z: z, qname: reverse(a) + trimDot(z.Zone.Zone)})
		}
	}
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for _, q := range qs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c.ask(ctx, q)
		})
	}
	wg.Wait()

	res := Result{Found: f}
	listed := map[string]bool{}
	for _, q := range qs {
		switch {
		case len(q.codes) > 0:
			res.Listings = append(res.Listings, Listing{Name: q.name, Zone: q.zone, Codes: q.codes, Weight: q.z.Weight})
			if !listed[q.zone] {
				listed[q.zone] = true
				res.Listed = append(res.Listed, q.zone)
				res.Score += q.z.Weight
			}
		case q.err != "":
			res.Errors = append(res.Errors, q.name+"="+q.zone+": "+q.err)
		}
	}
	return res
}

// ask asks one query.
func (c *Checker) ask(ctx context.Context, q *query) {
	if _, ok := dns.IsDomainName(q.qname); !ok || len(q.qname) > 253 {
		// A long domain under a long zone: the resolver would call it
		// not found, which would read as not listed.
		q.err = "name too long"
		return
	}
	addrs, err := c.Lookup.LookupA(ctx, q.qname)
	if err != nil {
		var de *net.DNSError
		if errors.As(err, &de) && de.IsNotFound {
			return // RFC 5782 §2.1: not listed
		}
		// SERVFAIL, a timeout: not known, which is not "not listed"
		// either. As for dnsbl, an error, not a listing.
		q.err = "temperror"
		return
	}
	addrs = slices.Clone(addrs)
	for i, a := range addrs {
		addrs[i] = a.Unmap()
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	addrs = slices.Compact(addrs)
	for _, a := range addrs {
		if !a.Is4() || !loopback.Contains(a) || errorRange.Contains(a) || a == refused {
			// Not a list's answer (a resolver rewriting NXDOMAIN), or
			// the list refusing to answer: nothing about the domain.
			q.err = "error code " + a.String()
			q.codes = nil
			return
		}
		if q.z.matches(a) {
			q.codes = append(q.codes, a.String())
		}
	}
}

// reverse is the RFC 5782 §2.1 (IPv4) or §2.4 (IPv6, nibbles) prefix of a,
// ending in a dot.
func reverse(a netip.Addr) string {
	a = a.Unmap()
	var b []byte
	if a.Is4() {
		o := a.As4()
		for i := 3; i >= 0; i-- {
			b = strconv.AppendInt(b, int64(o[i]), 10)
			b = append(b, '.')
		}
		return string(b)
	}
	const hex = "0123456789abcdef"
	o := a.As16()
	for i := 15; i >= 0; i-- {
		b = append(b, hex[o[i]&0xf], '.', hex[o[i]>>4], '.')
	}
	return string(b)
}

// trimDot is zone without its final dot.
func trimDot(z string) string {
	if z != "" && z[len(z)-1] == '.' {
		return z[:len(z)-1]
	}
	return z
}
