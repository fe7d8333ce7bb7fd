package uribl

import (
	"context"
	"encoding/base64"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// msg builds a message with one part of type typ holding body.
func msg(typ, body string) string {
	return "From: a@example.org\r\nTo: b@example.net\r\nSubject: t\r\nMIME-Version: 1.0\r\nContent-Type: " + typ +
		"\r\n\r\n" + body
}

func extract(t *testing.T, m string, max int) Found {
	t.Helper()
	f, err := Extract(context.Background(), strings.NewReader(m), max)
	if err != nil {
		t.Fatalf("Extract: %v", err)
	}
	return f
}

// TestExtractDomains shows each obfuscation undone: the registered domain
// found is the one the browser would go to.
func TestExtractDomains(t *testing.T) {
	for _, c := range []struct {
		name, msg string
		want      []string
	}{
		{"plain text", msg("text/plain", "see https://www.Bad.Example/x and http://shop.bad.co.uk:8080/"), []string{"bad.example", "bad.co.uk"}},
		{"bare www", msg("text/plain", "go to www.bad.example, now"), []string{"bad.example"}},
		{"href hex entity", msg("text/html", `<a href="https://bad&#x2e;example/login">click</a>`), []string{"bad.example"}},
		{"href named entity", msg("text/html", `<a href="https://bad&period;example/">x</a>`), []string{"bad.example"}},
		{"img src", msg("text/html", `<img src="http://img.bad.example/p.gif">`), []string{"bad.example"}},
		{"percent-encoded host", msg("text/plain", "http://b%61d%2Eexample/"), []string{"bad.example"}},
		{"userinfo", msg("text/plain", "http://good.example@bad.example/"), []string{"bad.example"}},
		{"percent-encoded at", msg("text/plain", "http://good.example%40bad.example/"), []string{"bad.example"}},
		{"IDN", msg("text/plain; charset=utf-8", "http://bücher.example/"), []string{"xn--bcher-kva.example"}},
		{"IDN fullwidth dot", msg("text/plain; charset=utf-8", "http://bad\u3002example/"), []string{"bad.example"}},
		{"redirect", msg("text/plain", "https://good.example/redirect?u=https://bad.example/"), []string{"good.example", "bad.example"}},
		{"redirect encoded", msg("text/plain", "https://good.example/r?u=https%3A%2F%2Fbad.example%2F"), []string{"good.example", "bad.example"}},
		{"quoted-printable html", "Content-Type: text/html\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<a href=3D\"http://bad=\r\n.example/\">x</a>", []string{"bad.example"}},
		{"multipart", "Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhttp://one.example/\r\n--b\r\nContent-Type: text/html\r\n\r\n<a href='http://two.example'>\r\n--b\r\nContent-Type: application/octet-stream\r\n\r\nhttp://attachment.example/\r\n--b--\r\n", []string{"one.example", "two.example"}},
		{"no MIME header", "Subject: x\r\n\r\nhttp://bad.example/", []string{"bad.example"}},
		{"public suffix only", msg("text/plain", "http://co.uk/"), nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := extract(t, c.msg, 20)
			if !slices.Equal(f.Domains, c.want) {
				t.Errorf("domains %q, want %q", f.Domains, c.want)
			}
		})
	}
}

// TestExtractIPs shows URLs whose host is an address found as addresses.
func TestExtractIPs(t *testing.T) {
	f := extract(t, msg("text/plain", "http://192.0.2.1/a http://[2001:db8::1]:80/ http://192.0.2.1:8080/"), 20)
	want := []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")}
	if !slices.Equal(f.IPs, want) || len(f.Domains) != 0 {
		t.Errorf("ips %v domains %q, want %v and none", f.IPs, f.Domains, want)
	}
	if f.URLs != 3 {
		t.Errorf("urls %d, want 3", f.URLs)
	}
}

// TestExtractBound shows the domains bounded by max, and the bound said.
func TestExtractBound(t *testing.T) {
	var b strings.Builder
	for i := range 30 {
		b.WriteString("http://d" + string(rune('a'+i%26)) + string(rune('a'+i/26)) + ".example/ ")
	}
	f := extract(t, msg("text/plain", b.String()), 5)
	if len(f.Domains) != 5 || !f.Truncated {
		t.Errorf("%d domains, truncated %v; want 5, true", len(f.Domains), f.Truncated)
	}
	f = extract(t, msg("text/plain", "http://a.example/ http://a.example/b"), 1)
	if len(f.Domains) != 1 || f.Truncated {
		t.Errorf("%d domains, truncated %v; want 1, false (one domain twice)", len(f.Domains), f.Truncated)
	}
}

// TestExtractHosts shows the URLs counted per host, and the hosts past
// the max named as not looked up, the URLs after them still counted.
func TestExtractHosts(t *testing.T) {
	f := extract(t, msg("text/plain", "http://a.example/1 http://www.a.example/2 http://192.0.2.1/ "+
		"http://b.example/ http://c.example/ http://c.example/x http://a.example/3"), 2)
	want := []Host{{Name: "a.example", URLs: 3}, {Name: "192.0.2.1", URLs: 1}, {Name: "b.example", URLs: 1}, {Name: "c.example", URLs: 2, Skipped: true}}
	if !slices.Equal(f.Hosts, want) || f.URLs != 7 || !f.Truncated {
		t.Errorf("hosts %+v, %d URLs, truncated %v; want %+v, 7, true", f.Hosts, f.URLs, f.Truncated, want)
	}
	if !slices.Equal(f.Domains, []string{"a.example", "b.example"}) {
		t.Errorf("domains %q", f.Domains)
	}
}

// TestExtractAcrossChunks shows a URL and an entity that straddle the
// boundary of the chunks text is read in found whole, in plain text and
// in base64-encoded HTML.
func TestExtractAcrossChunks(t *testing.T) {
	for _, off := range []int{1, 5, 12, 30} {
		filler := strings.Repeat("ab ", (chunk-off)/3)
		f := extract(t, msg("text/plain", filler+"http://www.bad.example/x and https://two.example/"), 20)
		if !slices.Equal(f.Domains, []string{"bad.example", "two.example"}) {
			t.Errorf("offset %d: domains %q", off, f.Domains)
		}
		html := filler + `<a href="https://bad&#x2e;example/">x</a>`
		f = extract(t, "Content-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\n"+b64(html), 20)
		if !slices.Equal(f.Domains, []string{"bad.example"}) {
			t.Errorf("offset %d, html: domains %q", off, f.Domains)
		}
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
