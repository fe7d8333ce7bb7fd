package headers

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"unicode"
	"unicode/utf8"

	"mxguard/checks/dmarc"
	"mxguard/internal/mailaddr"
)

// spoofed looks for display-name spoofing in the From mailboxes: a display
// name that shows an email address at another organisation than the From
// address's, or that names one of our or the protected domains while the
// From address is not at that domain or below it. MUAs often show only the
// display name (RFC 5322 §3.4 display-name), so that is where the lie goes.
func spoofed(section []byte, boxes []mailbox, o Options) (bool, string) {
	// The From domain is the one DMARC judges (RFC 7489 §3.1), read by the
	// same strict parser. When it will not say (several From fields or
	// addresses, bad syntax), each display name is held against its own
	// address, as the reader shows them side by side.
	pf := o.From
	if pf == nil {
		pf = dmarc.ParseFrom(section)
	}
	dmarcDom, err := pf.Domain, pf.Err
	named := namedDomains(o)
	for _, b := range boxes {
		if b.display == "" {
			continue
		}
		fromDom := dmarcDom
		if err != nil {
			fromDom = ""
			if d := b.domain; d != "" {
				fromDom = canonicalDomain(d)
			}
		}
		disp := fold(b.display)
		if addr := addressIn(disp, fromDom); addr != "" {
			return true, fmt.Sprintf("display name shows the address %s, but the From domain is %s", addr, describeDomain(fromDom))
		}
		for _, n := range named {
			if !namesDomain(disp, n) || fromDom == n.ascii || strings.HasSuffix(fromDom, "."+n.ascii) {
				continue
			}
			return true, fmt.Sprintf("display name names %s domain %s, but the From domain is %s", n.kind, n.ascii, describeDomain(fromDom))
		}
	}
	return false, ""
}

// describeDomain names the real From domain in a SpoofDetail.
func describeDomain(d string) string {
	if d == "" {
		return "unknown"
	}
	if strings.ContainsFunc(d, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		// The fallback domain is as written: keep its controls out of
		// the log line.
		return fmt.Sprintf("%q", d)
	}
	return d
}

// namedDomain is a domain that a display name must not name.
type namedDomain struct {
	ascii   string // lower-case, A-labels
	unicode string // lower-case, U-labels; equal to ascii for an ASCII name
	kind    string // "our" or "protected", for SpoofDetail
}

// namedCache keeps namedDomains' answers: the lists come from the
// configuration, so there are few of them, and the IDNA mapping of every
// domain would otherwise be redone for every message.
var (
	namedCache     sync.Map // key: the lists joined; value: []namedDomain
	namedCacheSize atomic.Int32
)

// maxNamedCache bounds namedCache, should the lists ever vary per message.
const maxNamedCache = 256

// namedDomains lists the domains of o in both their ASCII and Unicode form.
func namedDomains(o Options) []namedDomain {
	key := strings.Join(o.Domains, "\x00") + "\x01" + strings.Join(o.Protected, "\x00")
	if v, ok := namedCache.Load(key); ok {
		return v.([]namedDomain)
	}
	out := mapNamedDomains(o)
	if namedCacheSize.Add(1) <= maxNamedCache {
		namedCache.Store(key, out)
	}
	return out
}

func mapNamedDomains(o Options) []namedDomain {
	var out []namedDomain
	add := func(list []string, kind string) {
		for _, d := range list {
			a := canonicalDomain(d)
			if a == "" {
				continue
			}
			out = append(out, namedDomain{ascii: a, unicode: fold(mailaddr.ToUnicode(a)), kind: kind})
		}
	}
	add(o.Domains, "our")
	add(o.Protected, "protected")
	return out
}

// canonicalDomain returns d as DMARC compares domains (mailaddr.DNSName),
// or normalised as written when it is no DNS name: a display name may hold
// anything, and an invalid domain still differs from the real one.
func canonicalDomain(d string) string {
	d = strings.TrimSpace(d)
	if a, ok := mailaddr.DNSName(d); ok {
		return a
	}
	return mailaddr.NormalizeDomain(d)
}

// addressIn returns the first thing in the folded display name that looks
// like an email address (local@label.label) at another organisation than
// fromDom, with its domain in canonical form; or "". Addresses at the same
// Organizational Domain (RFC 7489 §3.2) are legitimate, as in
// "news@example.org" <bounce@mail.example.org>.
func addressIn(disp, fromDom string) string {
	for i := 0; i < len(disp); i++ {
		if disp[i] != '@' {
			continue
		}
		l := i
		for l > 0 {
			r, size := utf8.DecodeLastRuneInString(disp[:l])
			if !isLocalRune(r) {
				break
			}
			l -= size
		}
		e := i + 1
		for e < len(disp) {
			r, size := utf8.DecodeRuneInString(disp[e:])
			if !isDomainRune(r) && r != '.' {
				break
			}
			e += size
		}
		dom := strings.Trim(disp[i+1:e], ".")
		if l == i || !strings.Contains(dom, ".") {
			continue
		}
		d := canonicalDomain(dom)
		if d == fromDom || fromDom != "" && dmarc.OrgDomain(d) == dmarc.OrgDomain(fromDom) {
			continue
		}
		return disp[l:i] + "@" + d
	}
	return ""
}

// namesDomain reports whether the folded display name holds n as a word:
// not inside a longer label ("notexample.org", "example.organic"), but as a
// name or part of one ("Example.org Support", "mail.example.org", and
// "example.org.evil.test", which is there to be misread).
func namesDomain(disp string, n namedDomain) bool {
	for _, name := range []string{n.ascii, n.unicode} {
		for off := 0; off < len(disp); {
			i := strings.Index(disp[off:], name)
			if i < 0 {
				break
			}
			start, end := off+i, off+i+len(name)
			before, _ := utf8.DecodeLastRuneInString(disp[:start])
			after, _ := utf8.DecodeRuneInString(disp[end:])
			if (start == 0 || !isDomainRune(before)) && (end == len(disp) || !isDomainRune(after)) {
				return true
			}
			off = start + 1
		}
	}
	return false
}

// isDomainRune reports whether r may be part of a DNS label as people write
// one: letters, digits and '-' (internationalised labels included).
func isDomainRune(r rune) bool {
	return r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r)
}

// isLocalRune reports whether r may be part of an unquoted local-part
// (RFC 5322 §3.2.3 atext and '.', with RFC 6532 UTF-8).
func isLocalRune(r rune) bool {
	return r == '.' || isDomainRune(r) || r < utf8.RuneSelf && strings.ContainsRune("!#$%&'*+/=?^`{|}~", r)
}

// fold prepares a display name for comparison: lower-case, invisible
// characters removed, and look-alikes of ASCII mapped to ASCII — fullwidth
// forms (U+FF01–U+FF5E, so "＠" and "．"), the small and other at signs and
// full stops, and the Cyrillic and Greek letters that look like Latin ones.
// It is no full UTS #39 skeleton, but covers what spoofers use to dodge a
// plain '@' or a domain match.
func fold(s string) string {
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		switch {
		case 0xFF01 <= r && r <= 0xFF5E:
			r -= 0xFEE0 // fullwidth ASCII
		case r == '\u200b' || r == '\u200c' || r == '\u200d' || r == '\u2060' || r == '\ufeff' || r == '\u00ad':
			continue // zero-width and soft hyphen: invisible
		}
		if m, ok := confusables[r]; ok {
			r = m
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

// confusables maps characters that readers cannot tell from ASCII ones.
var confusables = map[rune]rune{
	'﹫': '@', // small commercial at
	'﹒': '.', '。': '.', '｡': '.', '\u2024': '.', '\u00b7': '.', '\u2027': '.',
	'‐': '-', '‑': '-', '‒': '-', '–': '-', '﹣': '-', '－': '-',
	// Cyrillic.
	'а': 'a', 'А': 'a', 'В': 'b', 'с': 'c', 'С': 'c', 'е': 'e', 'Е': 'e',
	'һ': 'h', 'Н': 'h', 'і': 'i', 'І': 'i', 'ј': 'j', 'Ј': 'j', 'к': 'k', 'К': 'k',
	'м': 'm', 'М': 'm', 'о': 'o', 'О': 'o', 'р': 'p', 'Р': 'p', 'ѕ': 's', 'Ѕ': 's',
	'т': 't', 'Т': 't', 'х': 'x', 'Х': 'x', 'у': 'y', 'У': 'y', 'ԁ': 'd', 'ԛ': 'q', 'ԝ': 'w',
	// Greek.
	'α': 'a', 'Α': 'a', 'Β': 'b', 'ε': 'e', 'Ε': 'e', 'Η': 'h', 'ι': 'i', 'Ι': 'i',
	'Κ': 'k', 'κ': 'k', 'Μ': 'm', 'Ν': 'n', 'ο': 'o', 'Ο': 'o', 'Ρ': 'p', 'ρ': 'p',
	'Τ': 't', 'τ': 't', 'υ': 'u', 'ν': 'v', 'Χ': 'x', 'χ': 'x', 'Υ': 'y', 'Ζ': 'z',
}
