package uribl

import (
	"net/netip"
	"slices"
	"testing"
)

// TestExtractIPForms shows each spelling of an address that a browser
// takes as that address (the WHATWG URL Standard's IPv4 parser: one to
// four parts, each decimal, 0x hex or 0 octal, the last filling the
// remaining bytes) found as the address, not as a domain name; and the
// spellings a browser refuses found as nothing.
func TestExtractIPForms(t *testing.T) {
	for _, c := range []struct {
		name, url string
		want      string // "" for no address and no domain
	}{
		{"dotted quad", "http://192.168.1.1/", "192.168.1.1"},
		{"one decimal number", "http://3232235777/", "192.168.1.1"},
		{"one hex number", "http://0xC0A80101/", "192.168.1.1"},
		{"one hex number, lower case", "http://0xc0a80101/x", "192.168.1.1"},
		{"one octal number", "http://030052000401/", "192.168.1.1"},
		{"octal parts", "http://0300.0250.1.1/", "192.168.1.1"},
		{"hex parts", "http://0xC0.0xA8.0x01.0x01/", "192.168.1.1"},
		{"mixed parts", "http://0xC0.0250.1.1/", "192.168.1.1"},
		{"three parts, the last two bytes", "http://192.168.257/", "192.168.1.1"},
		{"two parts, the last three bytes", "http://192.11010305/", "192.168.1.1"},
		{"trailing dot", "http://192.168.1.1./", "192.168.1.1"},
		{"with a port", "http://3232235777:8080/", "192.168.1.1"},
		{"userinfo", "http://good.example@0xC0A80101/", "192.168.1.1"},
		{"percent-encoded", "http://%30xC0A80101/", "192.168.1.1"},
		{"empty hex", "http://0x.0.0.1/", "0.0.0.1"},
		{"zero", "http://0/", "0.0.0.0"},
		{"IPv6", "http://[2001:db8::1]/", "2001:db8::1"},
		{"IPv6 upper case, port", "http://[2001:DB8:0:0:0:0:0:1]:443/", "2001:db8::1"},
		{"IPv4-mapped IPv6", "http://[::ffff:192.168.1.1]/", "192.168.1.1"},
		// A host ending in a number that the IPv4 parser refuses is no
		// host at all to a browser: neither an address nor a domain.
		{"part over 255", "http://256.1.1.1/", ""},
		{"last part too big", "http://192.168.1.256/", ""},
		{"three parts, last too big", "http://192.168.65536/", ""},
		{"five parts", "http://1.2.3.4.5/", ""},
		{"bad octal digit", "http://0300.0258.1.1/", ""},
		{"bad hex digit", "http://0xC0.0xG8.1.1/", ""},
		{"over 32 bits", "http://4294967296/", ""},
		{"far over 64 bits", "http://99999999999999999999999/", ""},
		{"empty part", "http://192..1.1/", ""},
		{"unclosed IPv6", "http://[2001:db8::1/", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := extract(t, msg("text/plain", "see "+c.url+" now"), 20)
			var want []netip.Addr
			if c.want != "" {
				want = []netip.Addr{netip.MustParseAddr(c.want)}
			}
			if !slices.Equal(f.IPs, want) || len(f.Domains) != 0 {
				t.Errorf("ips %v domains %q, want %v and no domain", f.IPs, f.Domains, want)
			}
		})
	}
}

// TestExtractNumericLabelsStayNames shows names with numbers that do not
// end in a number kept as domain names: the IPv4 parser only reads hosts
// whose last label is a number.
func TestExtractNumericLabelsStayNames(t *testing.T) {
	f := extract(t, msg("text/plain", "http://1.2.3.example/ http://0x1.example/ http://123.example.com/"), 20)
	if want := []string{"3.example", "0x1.example", "example.com"}; !slices.Equal(f.Domains, want) || len(f.IPs) != 0 {
		t.Errorf("domains %q ips %v, want %q", f.Domains, f.IPs, want)
	}
}

// TestIPFormsLookedUp shows an address spelt as an integer asked of the
// IP list as its reversed octets, and a bracketed IPv6 address as its
// reversed nibbles (RFC 5782 §2.1, §2.4).
func TestIPFormsLookedUp(t *testing.T) {
	cfg := Config{MaxDomains: 20, Zones: []ZoneConfig{{Zone: "ip.test", Weight: 10}}}
	r, f := run(t, define(t, cfg), msg("text/html", `<a href="http://3232235777/login">a</a> <a href="http://0300.0250.1.1/">b</a> <a href="http://[2001:db8::1]/">c</a>`))
	want := []string{"192.168.1.1=ip.test=127.0.0.2", "2001:db8::1=ip.test=127.0.0.2"}
	if r.Result != "listed" || !slices.Equal(f.Codes, want) || !slices.Equal(f.IPs, []string{"192.168.1.1", "2001:db8::1"}) {
		t.Errorf("result %q codes %q ips %q, want listed %q", r.Result, f.Codes, f.IPs, want)
	}
}
