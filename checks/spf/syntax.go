package spf

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// checkRecord reports the first syntax error in an SPF record, checked
// against the ABNF of RFC 7208 §12.
//
// blitiri.com.ar/go/spf parses terms lazily, as it evaluates them, so it
// misses errors that come after a matching term and accepts some terms the
// grammar forbids. RFC 7208 §4.6 says "if there are any syntax errors anywhere
// in the record, check_host() returns immediately with the result
// "permerror", without further interpretation", so every record the library
// fetches is checked whole here first (see guard.LookupTXT).
//
// record is the record as selected by §4.5: it starts with "v=spf1",
// case-insensitively, followed by a space or the end.
func checkRecord(record string) error {
	var redirects, exps int
	// record = version terms *SP; terms = *( 1*SP ( directive / modifier ) )
	// (RFC 7208 §4.6.1, §12). Splitting on spaces only is deliberate: any
	// other separator, such as a tab or a newline, is a syntax error.
	first := true
	for term := range strings.SplitSeq(record, " ") {
		if first {
			first = false
			continue // the version, already matched by the record selection
		}
		if term == "" {
			continue // runs of spaces, and trailing spaces
		}
		if name, value, ok := modifier(term); ok {
			// RFC 7208 §6: redirect and exp each appear at most once.
			switch strings.ToLower(name) {
			case "redirect":
				redirects++
				if redirects > 1 {
					return errors.New("more than one redirect modifier")
				}
				if err := checkDomainSpec(value, false); err != nil {
					return fmt.Errorf("%q: %w", term, err)
				}
			case "exp":
				exps++
				if exps > 1 {
					return errors.New("more than one exp modifier")
				}
				if err := checkDomainSpec(value, false); err != nil {
					return fmt.Errorf("%q: %w", term, err)
				}
			default:
				// RFC 7208 §6: unknown modifiers are ignored, but their
				// value is still a macro-string (§12).
				if err := checkMacroString(value, true); err != nil {
					return fmt.Errorf("%q: %w", term, err)
				}
			}
			continue
		}
		if err := checkDirective(term); err != nil {
			return fmt.Errorf("%q: %w", term, err)
		}
	}
	return nil
}

// modifier splits a modifier term into its name and value. A term is a
// modifier when it starts with a name followed by "=" (RFC 7208 §4.6.1:
// name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." )); a qualifier in front
// makes it a (broken) directive instead.
func modifier(term string) (name, value string, ok bool) {
	i := strings.IndexByte(term, '=')
	if i < 1 || !isAlpha(term[0]) {
		return "", "", false
	}
	for j := 1; j < i; j++ {
		c := term[j]
		if !isAlpha(c) && !isDigit(c) && c != '-' && c != '_' && c != '.' {
			return "", "", false
		}
	}
	return term[:i], term[i+1:], true
}

// checkDirective checks one directive: [ qualifier ] mechanism
// (RFC 7208 §4.6.2, §5, §12).
func checkDirective(term string) error {
	switch term[0] {
	case '+', '-', '~', '?':
		term = term[1:]
	}
	i := strings.IndexAny(term, ":/")
	if i < 0 {
		i = len(term)
	}
	name, rest := strings.ToLower(term[:i]), term[i:]
	switch name {
	case "all": // §5.1: all = "all"
		if rest != "" {
			return errors.New("all takes no argument")
		}
		return nil
	case "include", "exists": // §5.2, §5.7: name ":" domain-spec
		if !strings.HasPrefix(rest, ":") {
			return errors.New("missing domain")
		}
		return checkDomainSpec(rest[1:], false)
	case "a", "mx": // §5.3, §5.4: name [ ":" domain-spec ] [ dual-cidr-length ]
		rest, err := trimDualCIDR(rest)
		if err != nil {
			return err
		}
		if rest == "" {
			return nil
		}
		if rest[0] != ':' {
			return errors.New("bad argument")
		}
		return checkDomainSpec(rest[1:], false)
	case "ptr": // §5.5: "ptr" [ ":" domain-spec ]
		if rest == "" {
			return nil
		}
		if rest[0] != ':' {
			return errors.New("bad argument")
		}
		return checkDomainSpec(rest[1:], false)
	case "ip4", "ip6": // §5.6: name ":" network [ cidr-length ]
		if !strings.HasPrefix(rest, ":") {
			return errors.New("missing network")
		}
		network, cidr, hasCIDR := strings.Cut(rest[1:], "/")
		addr, err := netip.ParseAddr(network)
		if err != nil || addr.Zone() != "" {
			return errors.New("bad network")
		}
		bits := 32
		if name == "ip6" {
			bits = 128
			if !addr.Is6() {
				return errors.New("bad ip6 network")
			}
		} else if !addr.Is4() {
			return errors.New("bad ip4 network")
		}
		if hasCIDR {
			return checkCIDR(cidr, bits)
		}
		return nil
	}
	return errors.New("unknown mechanism")
}

// trimDualCIDR removes and checks a trailing dual-cidr-length from the
// argument of "a" or "mx": [ "/" ip4-cidr-length ] [ "//" ip6-cidr-length ]
// (RFC 7208 §5.6, §12). Only a trailing "/" followed by digits is taken as a
// prefix length; anything else is left to the domain-spec check.
func trimDualCIDR(rest string) (string, error) {
	if i := strings.LastIndex(rest, "//"); i >= 0 && allDigits(rest[i+2:]) {
		if err := checkCIDR(rest[i+2:], 128); err != nil {
			return "", err
		}
		rest = rest[:i]
	}
	if i := strings.LastIndexByte(rest, '/'); i >= 0 && allDigits(rest[i+1:]) {
		if err := checkCIDR(rest[i+1:], 32); err != nil {
			return "", err
		}
		rest = rest[:i]
	}
	return rest, nil
}

// checkCIDR checks a prefix length: "0" / %x31-39 *DIGIT, at most max
// (RFC 7208 §12; §5.6 "ip4-cidr-length", "ip6-cidr-length").
func checkCIDR(s string, max int) error {
	if s == "" || !allDigits(s) || (len(s) > 1 && s[0] == '0') {
		return fmt.Errorf("bad prefix length %q", s)
	}
	n, err := strconv.Atoi(s)
	if err != nil || n > max {
		return fmt.Errorf("bad prefix length %q", s)
	}
	return nil
}

// checkDomainSpec checks domain-spec = macro-string domain-end, where
// domain-end = ( "." toplabel [ "." ] ) / macro-expand (RFC 7208 §7.1, §12).
func checkDomainSpec(s string, explain bool) error {
	if s == "" {
		return errors.New("empty domain")
	}
	if err := checkMacroString(s, explain); err != nil {
		return err
	}
	// The literal text after the last macro-expand, if any, must carry the
	// domain-end.
	tail := s[lastMacroEnd(s):]
	if tail == "" {
		return nil // ends with a macro-expand
	}
	tail = strings.TrimSuffix(tail, ".")
	i := strings.LastIndexByte(tail, '.')
	if i < 0 || !isTopLabel(tail[i+1:]) {
		return errors.New("domain does not end in a valid top label")
	}
	return nil
}

// checkMacroString checks macro-string = *( macro-expand / macro-literal )
// (RFC 7208 §7.1). The macro letters "c", "r" and "t" are allowed only in
// explanation text (§7.2), which explain says this is.
func checkMacroString(s string, explain bool) error {
	for i := 0; i < len(s); {
		c := s[i]
		if c != '%' {
			// macro-literal = %x21-24 / %x26-7E
			if c < 0x21 || c > 0x7e {
				return fmt.Errorf("invalid character %q", c)
			}
			i++
			continue
		}
		n, err := macroExpandLen(s[i:], explain)
		if err != nil {
			return err
		}
		i += n
	}
	return nil
}

// macroExpandLen returns the length of the macro-expand at the start of s,
// which starts with "%":
//
//	macro-expand = ( "%{" macro-letter transformers *delimiter "}" ) / "%%" / "%_" / "%-"
func macroExpandLen(s string, explain bool) (int, error) {
	if len(s) < 2 {
		return 0, errors.New("unterminated macro")
	}
	switch s[1] {
	case '%', '_', '-':
		return 2, nil
	case '{':
	default:
		return 0, fmt.Errorf("invalid macro %q", s[:2])
	}
	end := strings.IndexByte(s, '}')
	if end < 0 {
		return 0, errors.New("unterminated macro")
	}
	body := s[2:end]
	if body == "" {
		return 0, errors.New("empty macro")
	}
	switch strings.ToLower(body[:1]) {
	case "s", "l", "o", "d", "i", "p", "h", "v":
	case "c", "r", "t":
		if !explain {
			return 0, fmt.Errorf("macro letter %q is only allowed in explanations", body[0])
		}
	default:
		return 0, fmt.Errorf("invalid macro letter %q", body[0])
	}
	j := 1
	for j < len(body) && isDigit(body[j]) {
		j++
	}
	// RFC 7208 §7.3: a DIGIT transformer, if given, is nonzero.
	if j > 1 {
		if n, err := strconv.Atoi(body[1:j]); err != nil || n == 0 {
			return 0, fmt.Errorf("invalid macro transformer %q", body[1:j])
		}
	}
	if j < len(body) && (body[j] == 'r' || body[j] == 'R') {
		j++
	}
	for ; j < len(body); j++ {
		if !strings.ContainsRune(".-+,/_=", rune(body[j])) {
			return 0, fmt.Errorf("invalid macro delimiter %q", body[j])
		}
	}
	return end + 1, nil
}

// lastMacroEnd returns the index just after the last macro-expand in s, or
// 0 if there is none. s must have passed checkMacroString.
func lastMacroEnd(s string) int {
	last := 0
	for i := 0; i < len(s); {
		if s[i] != '%' {
			i++
			continue
		}
		n, err := macroExpandLen(s[i:], true)
		if err != nil {
			return last
		}
		i += n
		last = i
	}
	return last
}

// isTopLabel reports whether s is a toplabel (RFC 7208 §7.1):
//
//	toplabel = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum )
//
// that is, letters, digits and inner dashes, and not all digits.
func isTopLabel(s string) bool {
	if s == "" || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	alpha := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case isAlpha(c):
			alpha = true
		case c == '-':
			alpha = true // the second alternative: a dash makes it non-numeric
		case !isDigit(c):
			return false
		}
	}
	return alpha
}

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return s != ""
}
