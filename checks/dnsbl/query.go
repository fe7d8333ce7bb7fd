package dnsbl

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxReason bounds Listing.Reason in bytes. A TXT answer can be tens of
// kilobytes; the reason is for logs and perhaps an SMTP reply line, and a
// list operator's text should not be able to flood either.
const maxReason = 200

// queryName returns the name to look ip up under in zone (without a
// trailing dot). An IPv4-mapped IPv6 address is looked up as the IPv4
// address it carries: it is one, as seen by a dual-stack socket, and IPv4
// lists would otherwise never match it. The cost: the IPv6 test entry of
// RFC 5782 §5, ::FFFF:7F00:2, is asked as 2.0.0.127, never in nibble form,
// so an IPv6-only list is to be tested with a native IPv6 address.
func queryName(ip netip.Addr, zone string) string {
	ip = ip.Unmap()
	var b strings.Builder
	if ip.Is4() {
		// RFC 5782 §2.1: the octets in reverse order, then the list's
		// domain, as in IN-ADDR.ARPA: 192.0.2.1 → 1.2.0.192.zone.
		a := ip.As4()
		b.Grow(16 + len(zone))
		for i := 3; i >= 0; i-- {
			b.WriteString(strconv.Itoa(int(a[i])))
			b.WriteByte('.')
		}
	} else {
		// RFC 5782 §2.4: the 32 nibbles of the address in reverse order,
		// as in IP6.ARPA (RFC 3596 §2.5), every zero written out.
		const hex = "0123456789abcdef"
		a := ip.As16()
		b.Grow(64 + len(zone))
		for i := 15; i >= 0; i-- {
			b.WriteByte(hex[a[i]&0x0f])
			b.WriteByte('.')
			b.WriteByte(hex[a[i]>>4])
			b.WriteByte('.')
		}
	}
	b.WriteString(strings.TrimSuffix(zone, "."))
	return b.String()
}

// reason turns a listing's TXT records into Listing.Reason. RFC 5782 §2.1
// makes the TXT record free text from the list operator, so it is untrusted
// input headed for logs and possibly an SMTP reply: records are sorted (the
// DNS gives no order, and results should be reproducible), joined with
// "; ", stripped of anything not printable — control characters, invalid
// UTF-8, format characters such as bidirectional overrides — and cut to at
// most maxReason bytes on a character boundary.
func reason(txts []string) string {
	txts = slices.Clone(txts)
	slices.Sort(txts)
	var parts []string
	for _, t := range txts {
		if t = sanitise(t); t != "" {
			parts = append(parts, t)
		}
	}
	s := strings.Join(parts, "; ")
	if len(s) <= maxReason {
		return s
	}
	cut := maxReason
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strings.TrimRight(s[:cut], " ")
}

// sanitise keeps the printable characters of s. White space controls (tab,
// CR, LF) become a space, so that words on two lines do not run together;
// runs of spaces collapse to one.
func sanitise(s string) string {
	var b strings.Builder
	space := false
	for i, w := 0, 0; i < len(s); i += w {
		r, n := utf8.DecodeRuneInString(s[i:])
		w = n
		switch {
		case r == utf8.RuneError && n == 1:
			continue // invalid UTF-8
		case r == ' ' || r == '\t' || r == '\r' || r == '\n':
			space = b.Len() > 0
			continue
		case !unicode.IsPrint(r):
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	return b.String()
}
