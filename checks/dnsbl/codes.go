package dnsbl

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// loopbackNet is where every DNSxL return code lives: RFC 5782 §2.1 says the
// A record of an entry MUST NOT be used as an address, and by convention it
// is in 127.0.0.0/8 (127.0.0.2 and up, §2.3 for lists with several codes).
var loopbackNet = netip.MustParsePrefix("127.0.0.0/8")

// errorNet is the range Spamhaus, and lists that copied it, answer from when
// they refuse to answer the question: 127.255.255.252 (typo in the query
// name), .254 (query through a public resolver), .255 (excessive queries).
// RFC 5782 does not define it; it is operator convention, but a widespread
// one, and reading these codes as listings would block all mail.
var errorNet = netip.MustParsePrefix("127.255.255.0/24")

// CodeRange is an inclusive range of DNSxL return codes (IPv4 addresses in
// 127.0.0.0/8). A single code has From == To.
type CodeRange struct{ From, To netip.Addr }

// Contains reports whether code is in r.
func (r CodeRange) Contains(code netip.Addr) bool {
	return r.From.Compare(code) <= 0 && code.Compare(r.To) <= 0
}

// String returns r in the form ParseCodes reads: "127.0.0.2" for a single
// code and "127.0.0.2-127.0.0.11" otherwise.
func (r CodeRange) String() string {
	if r.From == r.To {
		return r.From.String()
	}
	return r.From.String() + "-" + r.To.String()
}

// validate checks that r is a range ParseCodes could have produced.
func (r CodeRange) validate() error {
	for _, a := range []netip.Addr{r.From, r.To} {
		if !a.Is4() {
			return fmt.Errorf("dnsbl: code %q is not an IPv4 address (RFC 5782 §2.1: codes are A records)", a)
		}
		if !loopbackNet.Contains(a) {
			return fmt.Errorf("dnsbl: code %s is outside 127.0.0.0/8 (RFC 5782 §2.1)", a)
		}
	}
	if r.To.Less(r.From) {
		return fmt.Errorf("dnsbl: code range %s-%s ends before it starts", r.From, r.To)
	}
	return nil
}

// ParseCodes parses a list of return codes that count as a listing, as found
// in configuration: items separated by commas or white space, each a single
// code ("127.0.0.2"), an inclusive range ("127.0.0.2-127.0.0.11") or a CIDR
// prefix ("127.0.0.0/24"). Every code must be an IPv4 address in 127.0.0.0/8
// (RFC 5782 §2.1); a prefix must have no host bits set. All errors are
// reported, joined; an empty list is an error, because "no codes" would
// otherwise silently read as "any code" in a Zone.
func ParseCodes(s string) ([]CodeRange, error) {
	items := strings.FieldsFunc(s, func(r rune) bool {
		return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
	})
	if len(items) == 0 {
		return nil, errors.New("dnsbl: no return codes")
	}
	// An empty item between two commas is a typo worth reporting.
	if strings.Contains(strings.Join(strings.Fields(s), ""), ",,") ||
		strings.HasPrefix(strings.TrimSpace(s), ",") || strings.HasSuffix(strings.TrimSpace(s), ",") {
		return nil, fmt.Errorf("dnsbl: empty item in code list %q", s)
	}
	var (
		out  []CodeRange
		errs []error
	)
	for _, item := range items {
		r, err := parseCodeRange(item)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, r)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// parseCodeRange parses one item of a code list.
func parseCodeRange(item string) (CodeRange, error) {
	var r CodeRange
	switch {
	case strings.Contains(item, "/"):
		p, err := netip.ParsePrefix(item)
		if err != nil {
			return r, fmt.Errorf("dnsbl: code prefix %q: %w", item, err)
		}
		if !p.Addr().Is4() {
			return r, fmt.Errorf("dnsbl: code prefix %q is not IPv4 (RFC 5782 §2.1: codes are A records)", item)
		}
		if p != p.Masked() {
			return r, fmt.Errorf("dnsbl: code prefix %q has host bits set (did you mean %s?)", item, p.Masked())
		}
		r.From = p.Addr()
		r.To = lastAddr(p)
	case strings.Contains(item, "-"):
		from, to, _ := strings.Cut(item, "-")
		var err1, err2 error
		r.From, err1 = netip.ParseAddr(from)
		r.To, err2 = netip.ParseAddr(to)
		if err := errors.Join(err1, err2); err != nil {
			return r, fmt.Errorf("dnsbl: code range %q: %w", item, err)
		}
	default:
		a, err := netip.ParseAddr(item)
		if err != nil {
			return r, fmt.Errorf("dnsbl: code %q: %w", item, err)
		}
		r.From, r.To = a, a
	}
	if err := r.validate(); err != nil {
		return CodeRange{}, err
	}
	return r, nil
}

// lastAddr returns the highest address of an IPv4 prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Addr().As4()
	for i := p.Bits(); i < 32; i++ {
		a[i/8] |= 0x80 >> (i % 8)
	}
	return netip.AddrFrom4(a)
}
