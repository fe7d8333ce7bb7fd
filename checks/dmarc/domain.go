package dmarc

import (
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"
)

// idnaProfile turns U-labels into A-labels the way a lookup does (UTS #46
// non-transitional mapping, RFC 5891 checks), without the CheckHyphens rule
// that would refuse ASCII labels such as "ab--c" that exist in the DNS.
var idnaProfile = idna.New(
	idna.MapForLookup(),
	idna.Transitional(false),
	idna.BidiRule(),
	idna.CheckJoiners(true),
	idna.CheckHyphens(false),
)

// normalizeFromDomain turns the domain of the From address into the name
// that DMARC looks up and compares: lower-case ASCII, A-labels for an
// internationalised name, no trailing dot.
func normalizeFromDomain(d string) (string, error) {
	n, ok := canonicalDomain(d)
	if !ok {
		return "", fromErr(ErrBadDomain, "From domain %q is not a DNS domain name", d)
	}
	return n, nil
}

// CanonicalDomain returns d as DMARC compares domains: lower-case ASCII,
// A-labels for an internationalised name (RFC 8616 §4: the DNS holds
// A-labels), no trailing dot. ok is false when d is no DNS domain name.
func CanonicalDomain(d string) (name string, ok bool) { return canonicalDomain(d) }

// canonicalDomain is normalizeFromDomain without the error: it also serves
// the SPF and DKIM domains of the Input, which come from other checks.
func canonicalDomain(d string) (string, bool) {
	// The root is never a From domain; one trailing dot is DNS's
	// absolute form of the same name.
	d = strings.TrimSuffix(d, ".")
	if d == "" || !utf8.ValidString(d) {
		return "", false
	}
	for i := 0; i < len(d); i++ {
		if d[i] >= utf8.RuneSelf {
			a, err := idnaProfile.ToASCII(d)
			if err != nil {
				return "", false
			}
			d = a
			break
		}
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
			// LDH, plus '_' which the DNS allows and some names use.
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return "", false
			}
		}
	}
	return d, true
}

// OrgDomain returns the Organizational Domain of a lower-case domain name
// (RFC 7489 §3.2): the public suffix plus one label, using the Public Suffix
// List compiled into golang.org/x/net/publicsuffix. A name that is itself a
// public suffix is its own Organizational Domain, since §3.2 step 4 has no
// further label to add.
func OrgDomain(domain string) string {
	org, err := publicsuffix.EffectiveTLDPlusOne(domain)
	if err != nil {
		return domain
	}
	return org
}

// aligned reports whether an authenticated domain is aligned with the From
// domain: equal in strict mode, or with equal Organizational Domains in
// relaxed mode (RFC 7489 §3.1.1 for DKIM, §3.1.2 for SPF).
func aligned(from, authDomain string, strict bool) bool {
	d, ok := canonicalDomain(authDomain)
	if !ok {
		return false
	}
	if strict {
		return d == from
	}
	return d == from || OrgDomain(d) == OrgDomain(from)
}
