package uribl

import (
	"net/netip"
	"strconv"
	"strings"
)

// The host parsing of the WHATWG URL Standard (§3.5, host parsing): a host
// whose last label is a number is an IPv4 address to a browser, written in
// one to four parts, each decimal, hex (0x) or octal (a leading 0), the
// last part filling the bytes the others leave. A link to
// http://3232235777/ goes where http://192.168.1.1/ goes, and must be
// asked of the IP lists as that address, not taken for a domain name.

// endsInNumber reports whether the ASCII host name (lower case) ends in a
// number: its last label, a final empty one set aside, is decimal digits,
// or 0x followed by hex digits (the standard's "ends in a number").
func endsInNumber(name string) bool {
	name = strings.TrimSuffix(name, ".")
	last := name[strings.LastIndexByte(name, '.')+1:]
	if last == "" {
		return false
	}
	if strings.HasPrefix(last, "0x") {
		return strings.Trim(last[2:], "0123456789abcdef") == ""
	}
	return strings.Trim(last, "0123456789") == ""
}

// parseIPv4 is the standard's IPv4 parser, on a host for which
// endsInNumber holds. ok is false where a browser refuses the host: more
// than four parts, a part that is no number, a part but the last over
// 255, or the last too big for the bytes left to it.
func parseIPv4(name string) (netip.Addr, bool) {
	parts := strings.Split(name, ".")
	if len(parts) > 1 && parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1]
	}
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var v uint64
	for i, p := range parts {
		n, ok := ipv4Number(p)
		if !ok {
			return netip.Addr{}, false
		}
		if i < len(parts)-1 {
			if n > 255 {
				return netip.Addr{}, false
			}
			v |= n << (8 * (3 - i))
			continue
		}
		// The last part fills the 5-len(parts) bytes left.
		if n >= 1<<(8*(5-len(parts))) {
			return netip.Addr{}, false
		}
		v |= n
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}

// ipv4Number is the standard's IPv4 number parser: 0x or 0X for hex, a
// leading 0 for octal, decimal otherwise; "0x" alone is 0. A number past
// 64 bits is refused: no part of an address is that big.
func ipv4Number(s string) (uint64, bool) {
	if s == "" {
		return 0, false
	}
	base := 10
	switch {
	case len(s) >= 2 && (s[:2] == "0x" || s[:2] == "0X"):
		s, base = s[2:], 16
	case len(s) >= 2 && s[0] == '0':
		s, base = s[1:], 8
	}
	if s == "" {
		return 0, true
	}
	// An explicit base: no sign, no prefix, no underscores.
	n, err := strconv.ParseUint(s, base, 64)
	return n, err == nil
}
