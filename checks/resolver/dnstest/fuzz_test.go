package dnstest

import (
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// FuzzZone checks that any zone text the parser accepts can be served: no
// panic, and each plain record comes back when its own name and type are
// asked for. It runs the zone logic in process, without sockets.
func FuzzZone(f *testing.F) {
	f.Add(testZone)
	f.Add("$TTL 1\n*.x. IN TXT \"a\" \"b\"\n")
	f.Add("a. 1 IN CNAME b.\nb. 1 IN CNAME a.\n")
	f.Add("$ORIGIN a.b.\n@ IN MX 10 mx\nmx IN AAAA ::1\n")
	f.Add("$GENERATE 1-20 host$ A 192.0.2.$\n")
	f.Fuzz(func(t *testing.T, text string) {
		rrs, err := parseZone(text, "")
		// $GENERATE makes up to 65536 records a line; serving is
		// quadratic in an RRset's size, which is fine for tests but
		// would stall the fuzzer, so keep to sizes tests use.
		if err != nil || len(rrs) > 100 {
			return
		}
		z := newZone()
		z.add(rrs...)
		for _, rr := range rrs {
			h := rr.Header()
			req := new(dns.Msg).SetQuestion(h.Name, h.Rrtype)
			resp := z.answer(req)
			if resp == nil {
				t.Fatalf("nil response for %v", rr)
			}
			resp.Pack() // must not panic; failures become SERVFAIL in serve

			// The round-trip invariant holds for plain data: IN class,
			// not a wildcard owner, not a meta type, and no CNAME at the
			// owner (which would be answered instead).
			if h.Class != dns.ClassINET || strings.HasPrefix(h.Name, "*") || resp.Rcode == dns.RcodeNotImplemented {
				continue
			}
			hasCNAME := false
			for _, o := range z.rrs[dns.CanonicalName(h.Name)] {
				hasCNAME = hasCNAME || (o.Header().Rrtype == dns.TypeCNAME && o.Header().Class == dns.ClassINET)
			}
			if hasCNAME && h.Rrtype != dns.TypeCNAME {
				continue
			}
			found := false
			for _, a := range resp.Answer {
				found = found || dns.IsDuplicate(a, rr)
			}
			if !found {
				t.Errorf("asked %s %s, answer %v lacks %v", h.Name, dns.TypeToString[h.Rrtype], resp.Answer, rr)
			}
		}
	})
}
