package dnstest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const testZone = `
$ORIGIN example.org.
$TTL 600
@       IN SOA  ns hostmaster 1 3600 600 86400 42
@       IN TXT  "part one " "part two"
www     IN A    192.0.2.10
Mixed   IN A    192.0.2.11
link    IN CNAME www
*.w     IN A    192.0.2.99
x.y.ent IN A    192.0.2.12
`

// ask sends one question to s over UDP (with EDNS0 when edns is true) and
// returns the raw response.
func ask(t *testing.T, s *Server, name string, qtype uint16, edns bool) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	if edns {
		m.SetEdns0(1232, false)
	}
	c := dns.Client{Net: "udp", Timeout: time.Second}
	resp, _, err := c.Exchange(m, s.Addr())
	if err != nil {
		t.Fatalf("%s %s: %v", name, dns.TypeToString[qtype], err)
	}
	return resp
}

func TestServerSemantics(t *testing.T) {
	s := Start(t, testZone)
	tests := []struct {
		name      string
		qname     string
		qtype     uint16
		rcode     int
		answers   int
		wantSOA   bool
		firstData string // the first answer record's data, if any
	}{
		{name: "exact", qname: "www.example.org", qtype: dns.TypeA, rcode: dns.RcodeSuccess, answers: 1, firstData: "192.0.2.10"},
		{name: "case-insensitive", qname: "mIxEd.EXAMPLE.org", qtype: dns.TypeA, rcode: dns.RcodeSuccess, answers: 1, firstData: "192.0.2.11"},
		{name: "nxdomain", qname: "nope.example.org", qtype: dns.TypeA, rcode: dns.RcodeNameError, wantSOA: true},
		{name: "nodata", qname: "www.example.org", qtype: dns.TypeAAAA, rcode: dns.RcodeSuccess, wantSOA: true},
		{name: "empty non-terminal", qname: "y.ent.example.org", qtype: dns.TypeA, rcode: dns.RcodeSuccess, wantSOA: true},
		{name: "cname chased", qname: "link.example.org", qtype: dns.TypeA, rcode: dns.RcodeSuccess, answers: 2, firstData: "www.example.org."},
		{name: "cname asked for", qname: "link.example.org", qtype: dns.TypeCNAME, rcode: dns.RcodeSuccess, answers: 1, firstData: "www.example.org."},
		{name: "wildcard", qname: "any.w.example.org", qtype: dns.TypeA, rcode: dns.RcodeSuccess, answers: 1, firstData: "192.0.2.99"},
		{name: "wildcard nodata", qname: "any.w.example.org", qtype: dns.TypeTXT, rcode: dns.RcodeSuccess, wantSOA: true},
		{name: "no wildcard above closest encloser", qname: "z.ent.example.org", qtype: dns.TypeA, rcode: dns.RcodeNameError, wantSOA: true},
		{name: "ANY not implemented", qname: "www.example.org", qtype: dns.TypeANY, rcode: dns.RcodeNotImplemented},
		{name: "AXFR not implemented", qname: "example.org", qtype: dns.TypeAXFR, rcode: dns.RcodeNotImplemented},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := ask(t, s, tt.qname, tt.qtype, true)
			if resp.Rcode != tt.rcode {
				t.Fatalf("rcode = %s, want %s", dns.RcodeToString[resp.Rcode], dns.RcodeToString[tt.rcode])
			}
			if len(resp.Answer) != tt.answers {
				t.Fatalf("%d answers, want %d: %v", len(resp.Answer), tt.answers, resp.Answer)
			}
			if tt.answers > 0 {
				// The answer echoes the question's case (and, for a
				// wildcard, is synthesised at the question's name).
				if got := resp.Answer[0].Header().Name; got != dns.Fqdn(tt.qname) {
					t.Errorf("owner = %q, want %q", got, dns.Fqdn(tt.qname))
				}
				f := strings.Fields(resp.Answer[0].String())
				if got := f[len(f)-1]; got != tt.firstData {
					t.Errorf("data = %q, want %q", got, tt.firstData)
				}
			}
			gotSOA := len(resp.Ns) == 1 && resp.Ns[0].Header().Rrtype == dns.TypeSOA
			if gotSOA != tt.wantSOA {
				t.Errorf("SOA in authority = %v, want %v (%v)", gotSOA, tt.wantSOA, resp.Ns)
			}
			if gotSOA && resp.Ns[0].(*dns.SOA).Minttl != 42 {
				t.Errorf("negative answer carries SOA %v, want the zone's (MINIMUM 42)", resp.Ns[0])
			}
		})
	}
}

func TestSynthesisedSOA(t *testing.T) {
	s := Start(t, "a.b.example.net. 60 IN A 192.0.2.1")
	resp := ask(t, s, "x.b.example.net", dns.TypeA, true)
	if resp.Rcode != dns.RcodeNameError || len(resp.Ns) != 1 {
		t.Fatalf("got %v", resp)
	}
	soa, ok := resp.Ns[0].(*dns.SOA)
	if !ok || soa.Minttl != 300 || soa.Hdr.Name != "example.net." {
		t.Errorf("authority = %v, want a synthesised SOA for example.net. with MINIMUM 300", resp.Ns)
	}
}

func TestMultiStringTXTKept(t *testing.T) {
	s := Start(t, testZone)
	resp := ask(t, s, "example.org", dns.TypeTXT, true)
	if len(resp.Answer) != 1 {
		t.Fatalf("answers: %v", resp.Answer)
	}
	if got, want := resp.Answer[0].(*dns.TXT).Txt, []string{"part one ", "part two"}; !slices.Equal(got, want) {
		t.Errorf("TXT strings = %q, want %q", got, want)
	}
}

func TestTruncation(t *testing.T) {
	s := Start(t)
	for i := range 12 {
		// ~60 bytes each: over 512 in all, under 1232.
		if err := s.AddZone("big.test. 60 IN TXT \"" + strings.Repeat(string(rune('a'+i)), 50) + "\""); err != nil {
			t.Fatal(err)
		}
	}
	if resp := ask(t, s, "big.test", dns.TypeTXT, false); !resp.Truncated || len(resp.Answer) != 0 {
		t.Errorf("without EDNS: TC=%v with %d answers, want TC and none", resp.Truncated, len(resp.Answer))
	}
	resp := ask(t, s, "big.test", dns.TypeTXT, true)
	if resp.Truncated || len(resp.Answer) != 12 {
		t.Errorf("with EDNS 1232: TC=%v with %d answers, want all 12", resp.Truncated, len(resp.Answer))
	}
	if resp.IsEdns0() == nil {
		t.Error("EDNS query answered without OPT (RFC 6891 §7)")
	}
	m := new(dns.Msg).SetQuestion("big.test.", dns.TypeTXT)
	c := dns.Client{Net: "tcp", Timeout: time.Second}
	resp, _, err := c.Exchange(m, s.Addr())
	if err != nil || resp.Truncated || len(resp.Answer) != 12 {
		t.Errorf("over TCP: %v, TC=%v, %d answers; want all 12", err, resp != nil && resp.Truncated, len(resp.Answer))
	}
	if q := s.Queries(); q != 3 {
		t.Errorf("Queries() = %d, want 3", q)
	}
}

func TestBehaviours(t *testing.T) {
	s := Start(t, testZone)
	s.ServFail("WWW.example.org")
	s.Refuse("mixed.example.org.")
	if resp := ask(t, s, "www.example.org", dns.TypeTXT, true); resp.Rcode != dns.RcodeServerFailure {
		t.Errorf("ServFail: rcode %s", dns.RcodeToString[resp.Rcode])
	}
	if resp := ask(t, s, "mixed.example.org", dns.TypeA, true); resp.Rcode != dns.RcodeRefused {
		t.Errorf("Refuse: rcode %s", dns.RcodeToString[resp.Rcode])
	}

	s.Drop("link.example.org")
	m := new(dns.Msg).SetQuestion("link.example.org.", dns.TypeA)
	c := dns.Client{Net: "udp", Timeout: 100 * time.Millisecond}
	before := s.Queries()
	if _, _, err := c.Exchange(m, s.Addr()); err == nil {
		t.Error("Drop: got an answer")
	}
	if s.Queries() != before {
		t.Error("a dropped query was counted as answered")
	}

	s.Delay("example.org", 150*time.Millisecond)
	start := time.Now()
	ask(t, s, "example.org", dns.TypeTXT, true)
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("Delay: answered after %v", d)
	}

	s.Reset()
	if resp := ask(t, s, "www.example.org", dns.TypeA, true); resp.Rcode != dns.RcodeNameError {
		t.Errorf("after Reset: rcode %s, want NXDOMAIN and no SERVFAIL", dns.RcodeToString[resp.Rcode])
	}
	rr, err := dns.NewRR("www.example.org. 60 IN A 192.0.2.50")
	if err != nil {
		t.Fatal(err)
	}
	s.AddRR(rr, rr) // the duplicate is ignored, as in an RRset
	if resp := ask(t, s, "www.example.org", dns.TypeA, true); len(resp.Answer) != 1 {
		t.Errorf("after AddRR: %v", resp.Answer)
	}
}

func TestAddZoneError(t *testing.T) {
	_, err := New("ok.test. 60 IN A 192.0.2.1\nbad.test. 60 IN A not-an-address\n")
	if err == nil {
		t.Fatal("New accepted a bad zone")
	}
	if !strings.HasPrefix(err.Error(), "dnstest: ") || !strings.Contains(err.Error(), "line: 2") {
		t.Errorf("error %q should start with dnstest: and give the line", err)
	}
	s := Start(t)
	if err := s.AddZone("$INCLUDE /etc/passwd\n"); err == nil {
		t.Error("$INCLUDE was allowed")
	}
}

func TestCloseTwice(t *testing.T) {
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	s.Delay("slow.test", time.Hour) // Close must not wait for it
	go func() {
		m := new(dns.Msg).SetQuestion("slow.test.", dns.TypeA)
		dns.Exchange(m, s.Addr())
	}()
	time.Sleep(50 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
