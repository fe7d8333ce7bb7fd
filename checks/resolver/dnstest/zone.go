package dnstest

import (
	"fmt"
	"strings"

	"github.com/miekg/dns"
)

// maxChase bounds in-server CNAME chasing so a CNAME loop in test data
// cannot spin.
const maxChase = 8

// zone is the server's data: all records of all zones in one namespace.
// It is not safe for concurrent use; Server guards it.
type zone struct {
	rrs   map[string][]dns.RR // by lower-case owner name
	nodes map[string]bool     // every owner and every ancestor of one: the names that exist (RFC 4592 §2.2.2)
}

func newZone() *zone {
	return &zone{rrs: make(map[string][]dns.RR), nodes: make(map[string]bool)}
}

// parseZone parses RFC 1035 master-file text. Relative names are relative to
// the root unless the text sets $ORIGIN; $INCLUDE is refused so that test data
// cannot read arbitrary files.
func parseZone(text, file string) ([]dns.RR, error) {
	zp := dns.NewZoneParser(strings.NewReader(text), ".", file)
	zp.SetDefaultTTL(3600)
	var rrs []dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrs = append(rrs, rr)
	}
	if err := zp.Err(); err != nil {
		return nil, fmt.Errorf("dnstest: %w", err)
	}
	return rrs, nil
}

// add stores records, skipping exact duplicates as an RRset would.
func (z *zone) add(rrs ...dns.RR) {
	for _, rr := range rrs {
		if rr == nil || rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		owner := dns.CanonicalName(rr.Header().Name)
		dup := false
		for _, old := range z.rrs[owner] {
			if dns.IsDuplicate(old, rr) {
				dup = true
				break
			}
		}
		if dup {
			continue
		}
		z.rrs[owner] = append(z.rrs[owner], dns.Copy(rr))
		for n := owner; ; n = parent(n) {
			z.nodes[n] = true
			if n == "." {
				break
			}
		}
	}
}

// parent returns the name one label up; the parent of the root is the root.
func parent(name string) string {
	off, end := dns.NextLabel(name, 0)
	if end || off >= len(name) {
		return "."
	}
	return name[off:]
}

// find returns the records owned by name (lower case), synthesised from a
// wildcard when name does not exist, and whether the name exists at all.
// An empty non-terminal exists with no records (RFC 4592 §2.2.2).
func (z *zone) find(name string) ([]dns.RR, bool) {
	if z.nodes[name] {
		return z.rrs[name], true
	}
	// RFC 4592 §3.3.1: only the wildcard child of the closest encloser —
	// the nearest existing ancestor — can match.
	for ce := parent(name); ; ce = parent(ce) {
		if z.nodes[ce] {
			w, ok := z.rrs["*."+strings.TrimPrefix(ce, ".")]
			return w, ok
		}
		if ce == "." {
			return nil, false
		}
	}
}

// soa returns the SOA to put in the authority section of a negative answer
// for name: the one of the closest enclosing zone we hold, or a synthesised
// one whose MINIMUM is 300s (RFC 2308 §3).
func (z *zone) soa(name string) dns.RR {
	for n := name; ; n = parent(n) {
		for _, rr := range z.rrs[n] {
			if rr.Header().Rrtype == dns.TypeSOA && rr.Header().Class == dns.ClassINET {
				return dns.Copy(rr)
			}
		}
		if n == "." {
			break
		}
	}
	apex := name
	if labels := dns.SplitDomainName(name); len(labels) > 2 {
		apex = dns.Fqdn(strings.Join(labels[len(labels)-2:], "."))
	}
	return &dns.SOA{
		Hdr:     dns.RR_Header{Name: apex, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 300},
		Ns:      "ns.dnstest.invalid.",
		Mbox:    "hostmaster.dnstest.invalid.",
		Serial:  1,
		Refresh: 3600,
		Retry:   600,
		Expire:  86400,
		Minttl:  300,
	}
}

// answer builds an authoritative response to req from the zone data.
func (z *zone) answer(req *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	if req.Opcode != dns.OpcodeQuery {
		m.SetRcode(req, dns.RcodeNotImplemented)
		return m
	}
	if len(req.Question) != 1 {
		m.SetRcode(req, dns.RcodeFormatError)
		return m
	}
	m.SetReply(req)
	m.Authoritative = true
	q := req.Question[0]
	if q.Qclass != dns.ClassINET {
		m.Rcode = dns.RcodeNotImplemented
		return m
	}
	switch q.Qtype {
	case dns.TypeANY, dns.TypeAXFR, dns.TypeIXFR, dns.TypeOPT, dns.TypeTSIG, dns.TypeTKEY, dns.TypeMAILA, dns.TypeMAILB:
		// Meta and transfer queries have no place in these tests.
		m.Rcode = dns.RcodeNotImplemented
		return m
	}

	owner := q.Name // answers echo the asker's case (RFC 4343)
	name := dns.CanonicalName(owner)
	for hop := 0; hop <= maxChase; hop++ {
		rrs, exists := z.find(name)
		if !exists {
			// RFC 6604: after a CNAME, the rcode describes the last name.
			m.Rcode = dns.RcodeNameError
			m.Ns = []dns.RR{z.soa(name)}
			return m
		}
		var cname *dns.CNAME
		var data []dns.RR
		for _, rr := range rrs {
			if rr.Header().Class != dns.ClassINET {
				continue
			}
			switch {
			case rr.Header().Rrtype == q.Qtype:
				data = append(data, rr)
			case rr.Header().Rrtype == dns.TypeCNAME && cname == nil:
				cname = rr.(*dns.CNAME)
			}
		}
		if cname != nil && q.Qtype != dns.TypeCNAME {
			// RFC 1034 §4.3.2 step 3a: answer the CNAME and restart at
			// its target, which here means chasing it in our own data.
			m.Answer = append(m.Answer, withOwner(cname, owner))
			owner = cname.Target
			name = dns.CanonicalName(owner)
			continue
		}
		if len(data) == 0 {
			// NODATA (RFC 2308 §2.2).
			m.Ns = []dns.RR{z.soa(name)}
			return m
		}
		for _, rr := range data {
			m.Answer = append(m.Answer, withOwner(rr, owner))
		}
		return m
	}
	// A chain longer than maxChase: give what we have, as a server that
	// stops chasing does; the resolver treats an incomplete chain as NODATA.
	return m
}

// withOwner returns a copy of rr named owner, used both to echo the query's
// case and to synthesise records from a wildcard (RFC 4592 §3.4.1).
func withOwner(rr dns.RR, owner string) dns.RR {
	c := dns.Copy(rr)
	c.Header().Name = owner
	return c
}
