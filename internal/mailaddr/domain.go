// Package mailaddr reads mail addresses: the RFC 5322 address lists of
// header fields (From, Sender, Reply-To, …), with a strict and a lenient
// mode, and the two parts every address has, the local-part and the
// domain. The RFC 5321 envelope paths of MAIL and RCPT have a grammar of
// their own and stay in the proxy, but they use the local-part check and
// the domain type of this package, so that every reader in mxguard agrees
// on what an address and a domain are.
//
// One parser for every header reader matters because readers that split an
// address list differently are what an attacker plays off against each
// other: DMARC judges one From domain while the display-name check, or the
// user's mail reader, sees another.
package mailaddr

import (
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// idnaProfile maps a name as a DNS lookup does (UTS #46 non-transitional
// processing, RFC 5891 §5), without the CheckHyphens rule that would refuse
// ASCII labels such as "ab--c" that exist in the DNS.
var idnaProfile = idna.New(
	idna.MapForLookup(),
	idna.Transitional(false),
	idna.BidiRule(),
	idna.CheckJoiners(true),
	idna.CheckHyphens(false),
)

// Domain is a domain name normalised once: lower case, without the
// trailing dot of DNS's absolute form. It keeps two forms: the name as
// written (what facts and logs show, so that rules written against them
// keep matching) and the A-label form (RFC 5890 §2.3.2.1) under which two
// spellings of one internationalised name compare equal.
//
// The zero Domain is the empty name.
type Domain struct {
	name  string // lower case, no trailing dot
	ascii string // the comparison form: A-labels, or name (see ParseDomain)
}

// ParseDomain normalises s. It never fails: a name that is no valid
// domain is still a name, which compares equal only to itself.
//
// Only a name whose non-ASCII labels are U-labels in their canonical form
// (what IDNA's ToUnicode gives back for their A-labels) gets A-labels for
// comparison. A name that becomes another only through UTS #46 mapping
// (fullwidth letters, compatibility characters) is compared as written:
// the backend that receives it may not map it, and a recipient domain that
// only looks like one of ours must not pass for it (no open relay).
func ParseDomain(s string) Domain {
	name := NormalizeDomain(s)
	return Domain{name: name, ascii: asciiForm(name)}
}

// NormalizeDomain returns s in lower case without one trailing dot: the
// form mxguard shows and stores domains in. It does not convert between
// U-labels and A-labels; ParseDomain does, for comparisons.
func NormalizeDomain(s string) string {
	return strings.ToLower(strings.TrimSuffix(s, "."))
}

// String returns the normalised name, as written otherwise.
func (d Domain) String() string { return d.name }

// ASCII returns the form to compare and look up by: the name in A-labels
// when it is an internationalised name in canonical form, the name as it
// is otherwise (ASCII names included).
func (d Domain) ASCII() string { return d.ascii }

// IsZero reports whether d is the empty name.
func (d Domain) IsZero() bool { return d.name == "" }

// Equal reports whether d and o are the same name: equal A-label forms.
func (d Domain) Equal(o Domain) bool { return d.ascii == o.ascii }

// asciiForm returns the comparison form of a normalised name.
func asciiForm(name string) string {
	if isASCII(name) {
		return name
	}
	a, err := idnaProfile.ToASCII(name)
	if err != nil {
		return name
	}
	a = strings.ToLower(a)
	u, err := idnaProfile.ToUnicode(a)
	if err != nil {
		return name
	}
	// Each label must be written as its A-label or as its U-label.
	nl, al, ul := strings.Split(name, "."), strings.Split(a, "."), strings.Split(u, ".")
	if len(nl) != len(al) || len(nl) != len(ul) {
		return name
	}
	for i := range nl {
		if nl[i] != al[i] && nl[i] != ul[i] {
			return name
		}
	}
	return a
}

// DNSName returns s as the DNS holds it and as DMARC compares it
// (RFC 7489 §3.1; RFC 8616 §4: the DNS holds A-labels): lower-case ASCII,
// A-labels for an internationalised name, mapped the way a lookup maps it
// (UTS #46), no trailing dot. ok is false when s is no DNS domain name:
// empty, not UTF-8, a label empty or over 63 octets, the name over 253, or
// a character other than a letter, digit, '-' or '_' (which the DNS allows
// and some names use) in the result.
func DNSName(s string) (name string, ok bool) {
	// The root is never such a name; one trailing dot is DNS's absolute
	// form of the same name.
	d := strings.TrimSuffix(s, ".")
	if d == "" || !utf8.ValidString(d) {
		return "", false
	}
	if !isASCII(d) {
		a, err := idnaProfile.ToASCII(d)
		if err != nil {
			return "", false
		}
		d = a
	}
	d = strings.ToLower(d)
	if len(d) > 253 {
		return "", false
	}
	for label := range strings.SplitSeq(d, ".") {
		if len(label) == 0 || len(label) > 63 {
			return "", false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return "", false
			}
		}
	}
	return d, true
}

// ToUnicode returns the U-label form of a name in A-labels, or the name
// itself when it has none.
func ToUnicode(ascii string) string {
	u, err := idnaProfile.ToUnicode(ascii)
	if err != nil {
		return ascii
	}
	return u
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
