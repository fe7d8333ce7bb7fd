package dkim

import (
	"encoding/base64"
	"errors"
	"math"
	"strconv"
	"strings"
	"time"
)

// sigParams are the tags of one DKIM-Signature that the verification
// uses, read and checked (RFC 6376 §3.5, §6.1.1).
type sigParams struct {
	domain      string // d=
	keyAlgo     string // a=, before the "-"
	hashAlgo    string // a=, after it
	headerCanon string // c=
	bodyCanon   string
	headers     []string // h=
	bodyHash    []byte   // bh=
	sig         []byte   // b=
	length      int64    // l=; -1 when absent
	idDomain    string   // the domain of i=; "" when absent
	expires     time.Time
}

var requiredTags = []string{"v", "a", "b", "bh", "d", "h", "s"} // RFC 6376 §6.1.1

// parseSig reads the tags of a DKIM-Signature field value. Its error is
// the PERMFAIL detail (RFC 6376 §6.1.1); the messages are go-msgauth's
// where it has one, so that details stay what they were.
func parseSig(value string) (sigParams, error) {
	tags, err := parseTags(value)
	if err != nil {
		return sigParams{}, errors.New("dkim: malformed signature tags: " + err.Error())
	}
	if tags["v"] != "1" {
		return sigParams{}, errors.New("dkim: incompatible signature version")
	}
	for _, t := range requiredTags {
		if _, ok := tags[t]; !ok {
			return sigParams{}, errors.New("dkim: signature missing required tag")
		}
	}
	p := sigParams{domain: stripWhitespace(tags["d"]), length: -1}

	// RFC 6376 §3.5 i=: the domain of the identity is d= or a subdomain of
	// it. Domain names compare without regard to case (RFC 4343).
	if i, ok := tags["i"]; ok {
		id := stripWhitespace(i)
		at := strings.LastIndexByte(id, '@')
		if at < 0 {
			return sigParams{}, errors.New("dkim: domain mismatch: i= " + strconv.Quote(id) + " has no @")
		}
		p.idDomain = id[at+1:]
		if !inDomain(p.idDomain, p.domain) {
			return sigParams{}, errors.New("dkim: domain mismatch: the i= domain " + strconv.Quote(p.idDomain) +
				" is neither d= " + strconv.Quote(p.domain) + " nor a subdomain of it")
		}
	}

	p.headers = tagList(tags["h"])
	if !containsFold(p.headers, "From") {
		return sigParams{}, errors.New("dkim: From field not signed") // RFC 6376 §5.4
	}
	if t, ok := tags["t"]; ok {
		if _, err := parseTime(t); err != nil {
			return sigParams{}, errors.New("dkim: malformed time: " + err.Error())
		}
	}
	if x, ok := tags["x"]; ok {
		if p.expires, err = parseTime(x); err != nil {
			return sigParams{}, errors.New("dkim: malformed expiration time: " + err.Error())
		}
	}
	// RFC 6376 §3.5 q=: dns/txt is the only method there is.
	if q, ok := tags["q"]; ok && !contains(tagList(q), "dns/txt") {
		return sigParams{}, errors.New("dkim: unsupported public key query method")
	}
	var ok bool
	if p.keyAlgo, p.hashAlgo, ok = strings.Cut(stripWhitespace(tags["a"]), "-"); !ok {
		return sigParams{}, errors.New("dkim: malformed algorithm name")
	}
	p.headerCanon, p.bodyCanon = simple, simple // RFC 6376 §3.5 c= default
	if c := stripWhitespace(tags["c"]); c != "" {
		h, b, hasBody := strings.Cut(c, "/")
		p.headerCanon = h
		if hasBody {
			p.bodyCanon = b
		}
	}
	if p.headerCanon != simple && p.headerCanon != relaxed {
		return sigParams{}, errors.New("dkim: unsupported header canonicalization algorithm")
	}
	if p.bodyCanon != simple && p.bodyCanon != relaxed {
		return sigParams{}, errors.New("dkim: unsupported body canonicalization algorithm")
	}
	if l, ok := tags["l"]; ok {
		if p.length, err = parseLength(l); err != nil {
			return sigParams{}, err
		}
	}
	if p.bodyHash, err = base64.StdEncoding.DecodeString(stripWhitespace(tags["bh"])); err != nil {
		return sigParams{}, errors.New("dkim: malformed body hash: " + err.Error())
	}
	if p.sig, err = base64.StdEncoding.DecodeString(stripWhitespace(tags["b"])); err != nil {
		return sigParams{}, errors.New("dkim: malformed signature: " + err.Error())
	}
	return p, nil
}

// inDomain reports whether name is domain or a subdomain of it, without
// regard to case.
func inDomain(name, domain string) bool {
	if len(name) == len(domain) {
		return strings.EqualFold(name, domain)
	}
	return len(name) > len(domain) && name[len(name)-len(domain)-1] == '.' &&
		strings.EqualFold(name[len(name)-len(domain):], domain)
}

// parseLength reads l= (RFC 6376 §3.5: 1*76DIGIT). A count too large for
// an int64 is larger than any body, and is kept as the largest int64.
func parseLength(s string) (int64, error) {
	s = stripWhitespace(s)
	if s == "" || len(s) > 76 || strings.ContainsFunc(s, func(r rune) bool { return r < '0' || r > '9' }) {
		return 0, errors.New("dkim: malformed body length: l=" + strconv.Quote(s))
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return math.MaxInt64, nil // only digits, so out of range
	}
	return n, nil
}

func parseTime(s string) (time.Time, error) {
	sec, err := strconv.ParseInt(stripWhitespace(s), 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(sec, 0), nil
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
