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
// dnsbl check reads them).
var (
	loopback   = netip.MustParsePrefix("127.0.0.0/8")
	errorRange = netip.MustParsePrefix("127.255.255.0/24")
)

// Result is what the lookups of one message gave.
type Result struct {
	Found
	// Score is the sum of the weights of the zones that list any domain
	// or address; each zone counts once however many it lists.
	Score float64
	// Listed are those zones, in configuration order.
	Listed []string
	// ListedDomains are the listings, as DOMAIN=ZONE (or ADDRESS=ZONE).
	ListedDomains []string
	// Errors are the queries that failed, as DOMAIN=ZONE: temperror or
	// DOMAIN=ZONE: error code 127.255.255.254.
	Errors []string
}

// Checker looks a message's URLs up. It is safe for concurrent use if
// Lookup is.
type Checker struct {
	Lookup     dnsbl.Lookup
	Zones      []dnsbl.Zone
	MaxDomains int
}

// query is one name asked of one zone.
type query struct {
	name, zone string // what is reported: domain or address, zone
	qname      string
	z          dnsbl.Zone
	listed     bool
	err        string
}

// Lookups asks every zone about every domain and address of f.
func (c *Checker) Lookups(ctx context.Context, f Found) Result {
	var qs []*query
	for _, z := range c.Zones {
		for _, d := range f.Domains {
			qs = append(qs, &query{name: d, zone: z.Zone, z: z, qname: d + "." + trimDot(z.Zone)})
		}
		for _, a := range f.IPs {
			qs = append(qs, &query{name: a.String(), zone: z.Zone, z: z, qname: reverse(a) + trimDot(z.Zone)})
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
		case q.listed:
			res.ListedDomains = append(res.ListedDomains, q.name+"="+q.zone)
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
		q.err = "temperror"
		return
	}
	addrs = slices.Clone(addrs)
	slices.SortFunc(addrs, netip.Addr.Compare)
	for _, a := range addrs {
		a = a.Unmap()
		if !a.Is4() || !loopback.Contains(a) || errorRange.Contains(a) {
			// Not a list's answer (a resolver rewriting NXDOMAIN), or
			// the list refusing to answer: nothing about the domain.
			q.err = "error code " + a.String()
			q.listed = false
			return
		}
		if len(q.z.Match) == 0 || slices.ContainsFunc(q.z.Match, func(r dnsbl.CodeRange) bool { return r.Contains(a) }) {
			q.listed = true
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
