package uribl

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"golang.org/x/net/publicsuffix"
)

// FuzzExtract feeds Extract arbitrary messages: it must not panic, must
// keep its bounds, every domain it gives must be a registered domain in
// lower case A-labels that does not end in a number (a browser reads
// those as addresses), and every address a plain IPv4 or IPv6 one.
func FuzzExtract(f *testing.F) {
	f.Add([]byte(msg("text/html", `<a href="https://good.example/r?u=https%3A%2F%2Fbad&#x2e;example">`)))
	f.Add([]byte(msg("text/plain", "http://b%61d.example http://[::1]/ www.xn--bcher-kva.example http://u@h.example:1/")))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nhttp://a.example\r\n--b--"))
	// Addresses as browsers read them (WHATWG URL host parsing).
	f.Add([]byte(msg("text/plain", "http://3232235777/ http://0xC0A80101/ http://0300.0250.1.1/ http://192.168.257/")))
	f.Add([]byte(msg("text/html", `<a href="http://[2001:db8::1]:8080/">x</a> <a href="http://[::ffff:0xc0.1]/">y</a>`)))
	f.Add([]byte(msg("text/plain", "http://0x.0.0x/ http://1.2.3.4.5/ http://99999999999999999999999/ http://0x1.example/")))
	f.Fuzz(func(t *testing.T, b []byte) {
		const max = 4
		got, err := Extract(context.Background(), bytes.NewReader(b), max)
		if err != nil {
			t.Fatalf("Extract: %v", err)
		}
		if len(got.Domains) > max || len(got.IPs) > max || got.URLs > maxURLs {
			t.Fatalf("bounds exceeded: %+v", got)
		}
		var named, counted int
		seen := map[string]bool{}
		for _, h := range got.Hosts {
			if seen[h.Name] || h.URLs < 1 {
				t.Fatalf("host %+v twice or without a URL", h)
			}
			seen[h.Name] = true
			counted += h.URLs
			if !h.Skipped {
				named++
			}
		}
		if named != len(got.Domains)+len(got.IPs) || counted > got.URLs {
			t.Fatalf("hosts %+v disagree with %d domains, %d addresses, %d URLs", got.Hosts, len(got.Domains), len(got.IPs), got.URLs)
		}
		for _, a := range got.IPs {
			if !a.IsValid() || a.Zone() != "" || a.Is4In6() {
				t.Fatalf("address %v: not a plain IPv4 or IPv6 address", a)
			}
		}
		for _, d := range got.Domains {
			if d != strings.ToLower(d) {
				t.Fatalf("domain %q not lower case", d)
			}
			if endsInNumber(d) {
				t.Fatalf("domain %q ends in a number: a browser reads it as an address", d)
			}
			if reg, err := publicsuffix.EffectiveTLDPlusOne(d); err != nil || reg != d {
				t.Fatalf("domain %q is not a registered domain (%q, %v)", d, reg, err)
			}
		}
	})
}
