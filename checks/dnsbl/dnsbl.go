// Package dnsbl checks an SMTP client's IP address against DNS block and
// allow lists (DNSBL and DNSWL, together DNSxL, RFC 5782).
//
// A check reports evidence; it never decides. Checker.Check takes only the
// client address and returns which lists list it, with what codes and
// reasons, and a score: the sum of the configured weights of those lists,
// negative weights being allow lists. What to do about the score is for the
// rules to say.
//
// A list that cannot be asked is never a listing: a DNS failure, a timeout or
// an operator's error code is reported in Result.Errors, and a temporary one
// sets Result.Temperror, so that a caller can tell "not listed" from "could
// not tell" (a failed allow list makes the score too high, a failed block
// list too low).
package dnsbl

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"slices"
	"sync"

	"github.com/miekg/dns"

	"mxguard/checks/resolver"
)

// Lookup is what the check needs from DNS; mxguard/checks/resolver's
// *Resolver satisfies it.
//
// Errors should be, or wrap, *net.DNSError with IsNotFound set for NXDOMAIN
// and NODATA. Any other error is taken as a temporary failure.
type Lookup interface {
	LookupA(ctx context.Context, name string) ([]netip.Addr, error)
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

// Zone is one DNSxL to ask.
type Zone struct {
	// Zone is the list's domain, e.g. "zen.spamhaus.org"; the client's
	// address is prefixed to it (RFC 5782 §2.1, §2.4).
	Zone string
	// Weight is added to Result.Score when the list lists the client:
	// positive for a block list, negative for an allow list (DNSWL).
	Weight float64
	// Match are the return codes that count as a listing. Empty means any
	// code in 127.0.0.0/8 (RFC 5782 §2.1, §2.3) other than the error range
	// 127.255.255.0/24. Codes in the error range are errors even when a
	// range here covers them.
	Match []CodeRange
}

// Validate reports a Zone that Check could not use as meant: a name that is
// not a domain name, a weight that is not a finite number (a NaN would make
// every score NaN), or a Match range ParseCodes would not have produced.
// Configuration loaders should call it once, at load.
func (z Zone) Validate() error {
	name := z.Zone
	if name != "" && name[len(name)-1] != '.' {
		name += "."
	}
	if _, ok := dns.IsDomainName(name); !ok || name == "." || name[0] == '.' {
		return fmt.Errorf("dnsbl: zone %q is not a domain name", z.Zone)
	}
	// The longest query name is an IPv6 one: 32 nibbles, 64 bytes.
	if len(name)+64 > 254 {
		return fmt.Errorf("dnsbl: zone %q is too long to prefix an IPv6 address to", z.Zone)
	}
	if math.IsNaN(z.Weight) || math.IsInf(z.Weight, 0) {
		return fmt.Errorf("dnsbl: zone %q: weight %v is not a finite number", z.Zone, z.Weight)
	}
	for _, r := range z.Match {
		if err := r.validate(); err != nil {
			return fmt.Errorf("dnsbl: zone %q: %w", z.Zone, err)
		}
	}
	return nil
}

// Listing is one list that lists the client.
type Listing struct {
	// Zone is the list's Zone as configured.
	Zone string
	// Codes are the returned A records that matched, in address order,
	// e.g. ["127.0.0.2"].
	Codes []string
	// Reason is the list's TXT record(s) (RFC 5782 §2.1), joined with "; "
	// and sanitised: printable characters only, at most 200 bytes. It is
	// "" when there is none or it could not be fetched. It is text from a
	// third party: quote it, never interpret it.
	Reason string
	// Weight is the Zone's Weight.
	Weight float64
}

// Result is the evidence a DNSxL check reports.
type Result struct {
	// Score is the sum of Weight over Listed.
	Score float64
	// Listed are the lists that list the client, in configuration order.
	Listed []Listing
	// Errors are the lists that could not be used, in configuration
	// order, each "zone: temperror" (DNS failure or timeout) or
	// "zone: error code 127.255.255.254" (the list refused the query, or
	// answered outside 127.0.0.0/8). None of them is a listing.
	Errors []string
	// Temperror is set when some list failed temporarily, so that asking
	// again might change the result, and Score may be missing its weight.
	// Error codes do not set it: a list that refuses our resolver will
	// refuse it again.
	Temperror bool
}

// Checker asks DNSxLs about client addresses. It is safe for concurrent use
// if Lookup is; its fields must not change while Check runs.
type Checker struct {
	// Lookup answers the DNS queries.
	Lookup Lookup
	// Zones are the lists to ask, all of them concurrently.
	Zones []Zone
}

// outcome is what asking one zone gave.
type outcome struct {
	listing *Listing
	err     string
	temp    bool
	panic   any // a panic in Lookup, re-raised in the caller's goroutine
}

// Check asks every zone about ip, concurrently, and reports the evidence.
// It returns when every zone has answered or failed; the Lookup's timeouts
// and ctx bound how long that takes.
func (c *Checker) Check(ctx context.Context, ip netip.Addr) Result {
	ip = ip.WithZone("") // an IPv6 scope zone is not part of the address
	outs := make([]outcome, len(c.Zones))
	if len(c.Zones) == 1 || resolver.IsCacheOnly(ctx) {
		// No lookup can keep the others waiting: one list, or answers
		// from the cache alone. Goroutines would cost more than the
		// lookups (2.3 us a list).
		for i, z := range c.Zones {
			outs[i] = c.checkZone(ctx, z, ip)
		}
		return collect(outs)
	}
	var wg sync.WaitGroup
	for i, z := range c.Zones {
		wg.Go(func() {
			// Lookup is foreign code: a panic in this goroutine would
			// take down the process, out of reach of any recover the
			// caller of Check has. Carry it back instead.
			defer func() {
				if p := recover(); p != nil {
					outs[i] = outcome{panic: p}
				}
			}()
			outs[i] = c.checkZone(ctx, z, ip)
		})
	}
	wg.Wait()
	return collect(outs)
}

// collect sums the zones' outcomes, stored by zone index, so the order is
// the configuration's whatever the order of the answers.
func collect(outs []outcome) Result {
	var res Result
	for _, o := range outs {
		if o.panic != nil {
			panic(o.panic)
		}
		switch {
		case o.listing != nil:
			res.Listed = append(res.Listed, *o.listing)
			res.Score += o.listing.Weight
		case o.err != "":
			res.Errors = append(res.Errors, o.err)
			res.Temperror = res.Temperror || o.temp
		}
	}
	return res
}

// checkZone asks one zone about ip.
func (c *Checker) checkZone(ctx context.Context, z Zone, ip netip.Addr) outcome {
	if !ip.IsValid() {
		return outcome{err: z.Zone + ": invalid client address"}
	}
	name := queryName(ip, z.Zone)
	if _, ok := dns.IsDomainName(name); !ok || len(name) > 253 {
		// The resolver would call such a name not found, which would
		// read as "not listed"; say what is wrong instead.
		return outcome{err: z.Zone + ": invalid zone name"}
	}

	addrs, err := c.Lookup.LookupA(ctx, name)
	if err != nil {
		var de *net.DNSError
		if errors.As(err, &de) && de.IsNotFound {
			// RFC 5782 §2.1: no entry, not listed.
			return outcome{}
		}
		// SERVFAIL, REFUSED, timeouts and anything unexpected: we do not
		// know, which is not the same as not listed.
		return outcome{err: z.Zone + ": temperror", temp: true}
	}

	// Our own copy, in a reproducible order: the DNS gives none.
	got := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		got = append(got, a.Unmap())
	}
	slices.SortFunc(got, netip.Addr.Compare)
	got = slices.Compact(got)
	var codes []string
	for _, a := range got {
		if !a.Is4() || !loopbackNet.Contains(a) || errorNet.Contains(a) {
			// Outside 127.0.0.0/8 (RFC 5782 §2.1) the answer is not a
			// list's — a resolver rewriting NXDOMAIN to an address of
			// its own, say; in 127.255.255.0/24 it is the list refusing
			// to answer. Either way the answer says nothing about the
			// client, so no code in it is a listing.
			return outcome{err: z.Zone + ": error code " + a.String()}
		}
		if matches(z.Match, a) {
			codes = append(codes, a.String())
		}
	}
	if len(codes) == 0 {
		// Listed, but with codes this configuration does not count: a
		// combined list's sub-list that is not wanted (RFC 5782 §2.3).
		return outcome{}
	}

	l := &Listing{Zone: z.Zone, Codes: codes, Weight: z.Weight}
	// RFC 5782 §2.1: the TXT record at the same name gives the reason.
	// Fetched only for a listing, as most clients are not listed; a
	// failure costs the reason, never the listing.
	if txts, err := c.Lookup.LookupTXT(ctx, name); err == nil {
		l.Reason = reason(txts)
	}
	return outcome{listing: l}
}

// matches reports whether code counts as a listing under match; an empty
// match counts every code (the caller has already set the error codes
// aside).
func matches(match []CodeRange, code netip.Addr) bool {
	if len(match) == 0 {
		return true
	}
	for _, r := range match {
		if r.Contains(code) {
			return true
		}
	}
	return false
}
