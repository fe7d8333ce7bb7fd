package dmarc

import (
	"golang.org/x/net/publicsuffix"

	"mxguard/internal/mailaddr"
)

// normalizeFromDomain turns the domain of the From address into the name
// that DMARC looks up and compares: lower-case ASCII, A-labels for an
// internationalised name, no trailing dot (mailaddr.DNSName).
func normalizeFromDomain(d string) (string, error) {
	n, ok := mailaddr.DNSName(d)
	if !ok {
		return "", fromErr(ErrBadDomain, "From domain %q is not a DNS domain name", d)
	}
	return n, nil
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
	d, ok := mailaddr.DNSName(authDomain)
	if !ok {
		return false
	}
	if strict {
		return d == from
	}
	return d == from || OrgDomain(d) == OrgDomain(from)
}
