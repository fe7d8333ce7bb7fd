package dmarc

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"mxguard/internal/mailaddr"
)

// Errors that FromDomain wraps, so that a caller can classify a From problem
// with errors.Is. Check reports each of them as permerror: RFC 7489 §6.6.1
// requires exactly one RFC5322.From domain, and a message that has none, or
// several, cannot be evaluated (several From fields or addresses are a known
// way to have the MUA show one domain while DMARC judges another).
var (
	ErrNoFrom            = errors.New("dmarc: no From header field")
	ErrMultipleFrom      = errors.New("dmarc: more than one From header field")
	ErrNoAddress         = errors.New("dmarc: From holds no address")
	ErrMultipleAddresses = errors.New("dmarc: From holds more than one address")
	ErrNoDomain          = errors.New("dmarc: From address has no domain")
	ErrMalformedFrom     = errors.New("dmarc: malformed From header field")
	ErrBadDomain         = errors.New("dmarc: From domain is not a DNS domain name")
)

// fromError is a FromDomain error: a message for the operator that wraps
// one of the Err* kinds.
type fromError struct {
	kind error
	msg  string
}

func (e *fromError) Error() string { return "dmarc: " + e.msg }
func (e *fromError) Unwrap() error { return e.kind }

func fromErr(kind error, format string, args ...any) error {
	return &fromError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// FromDomain extracts the RFC5322.From domain (RFC 7489 §3.1, §6.6.1) from a
// message's header section: the raw bytes up to the blank line, CRLF line
// endings (a bare LF also ends a line, so that no line can hide inside
// another). Reading stops at the first empty line.
//
// Exactly one From header field with exactly one address that has a domain
// is required (RFC 5322 §3.6, §3.6.2); anything else is an error wrapping
// one of the Err* values above. The field is parsed with RFC 5322's
// obsolete syntax (§4) too — folding, comments, CFWS between the parts of an
// address, source routes, empty list elements, "From :" — and with RFC 6854
// groups, because attackers use exactly these to make parsers disagree. The
// parser is mailaddr's in its Strict mode, the one the header checks use in
// its Lenient mode, so that both count and read the same addresses. What
// does not parse is an error rather than a guess: a permerror is safer than
// judging a domain the reader never sees.
//
// The domain is returned lower-case, without a trailing dot, in ASCII
// (internationalised domains as A-labels, RFC 5891).
func FromDomain(header []byte) (domain string, err error) {
	fields, err := fromFields(header)
	if err != nil {
		return "", err
	}
	switch len(fields) {
	case 0:
		return "", ErrNoFrom
	case 1:
	default:
		// RFC 5322 §3.6: the From field occurs exactly once.
		return "", fromErr(ErrMultipleFrom, "%d From header fields", len(fields))
	}
	return parseFromValue(fields[0])
}

// fromFields returns the unfolded values of every From field in header.
func fromFields(header []byte) ([]string, error) {
	var (
		fields []string
		cur    []byte // the unfolded value of the current From field
		inFrom bool
		first  = true
	)
	flush := func() {
		if inFrom {
			fields = append(fields, string(cur))
		}
		inFrom, cur = false, nil
	}
	for len(header) > 0 {
		var line []byte
		if i := bytes.IndexByte(header, '\n'); i >= 0 {
			line, header = header[:i], header[i+1:]
		} else {
			line, header = header, nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			break // end of the header section
		}
		if line[0] == ' ' || line[0] == '\t' {
			if first {
				// A continuation with nothing to continue: readers
				// disagree on what it belongs to, so refuse to guess.
				return nil, fromErr(ErrMalformedFrom, "header section starts with a folded line")
			}
			// RFC 5322 §2.2.3: unfolding removes the CRLF only.
			if inFrom {
				cur = append(cur, line...)
			}
			continue
		}
		first = false
		flush()
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			continue // not a header field; no reader takes it for From
		}
		// RFC 5322 §4.5 (obs-from): WSP may stand between the name and
		// the colon, and readers honour it, so "From :" counts.
		name := bytes.TrimRight(line[:colon], " \t")
		if strings.EqualFold(string(name), "From") {
			inFrom = true
			cur = append([]byte(nil), line[colon+1:]...)
		}
	}
	flush()
	return fields, nil
}

// parseFromValue parses an unfolded From field value with the strict
// reader that every header check shares (mailaddr.Strict).
func parseFromValue(v string) (string, error) {
	addrs, err := mailaddr.Parse(v, mailaddr.Strict)
	var se *mailaddr.SyntaxError
	if err != nil && !errors.As(err, &se) {
		return "", fromErr(ErrMalformedFrom, "malformed From: %v", err)
	}
	switch n := len(addrs); {
	case n > 1:
		// Reported before syntax errors: "a@b, c@d" and "<a@b> <c@d>"
		// are the multiple-address bypass, whatever else is wrong.
		return "", fromErr(ErrMultipleAddresses, "From holds %d addresses", n)
	case se != nil:
		return "", fromErr(ErrMalformedFrom, "malformed From: %s", se.Msg)
	case n == 0:
		return "", ErrNoAddress
	}
	d := addrs[0].Domain
	if d == "" {
		return "", ErrNoDomain
	}
	return normalizeFromDomain(d)
}
