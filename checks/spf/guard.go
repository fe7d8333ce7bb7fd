package spf

import (
	"context"
	"errors"
	"net"
	"strings"
)

// guard sits between blitiri.com.ar/go/spf and the Resolver for one
// check_host() evaluation (RFC 7208 §4). It fixes up what the library
// expects or misses:
//
//   - The library classifies errors with a bare type assertion to
//     *net.DNSError (err.(*net.DNSError)); a wrapped SERVFAIL would become a
//     permerror. Every error is handed over as an unwrapped *net.DNSError,
//     and an error that is not one becomes a temporary one (RFC 7208 §2.6.6).
//   - A query name that cannot be a DNS name (an empty label, a label over 63
//     octets) is treated as non-existent, as RFC 7208 §4.3 does for the
//     initial domain; a name over 253 octets is truncated from the left as
//     §7.3 prescribes for macro expansions.
//   - Every SPF record the library fetches is syntax-checked whole
//     (RFC 7208 §4.6); a broken one is answered with a permanent DNS error,
//     which the library turns into permerror, and remembered in syntaxErr.
//
// A guard is used by one goroutine and thrown away.
type guard struct {
	r Resolver

	// syntaxErr is the first syntax error found in an evaluated record.
	syntaxErr error
}

// LookupTXT implements Resolver.
func (g *guard) LookupTXT(ctx context.Context, name string) ([]string, error) {
	qname, ok := queryName(name)
	if !ok {
		return nil, notFound(name)
	}
	txts, err := g.r.LookupTXT(ctx, qname)
	if err != nil {
		return nil, dnsError(err, qname)
	}
	// Mirror the library's record selection (RFC 7208 §4.5); when it finds
	// more than one record it already answers permerror.
	var record string
	n := 0
	for _, txt := range txts {
		if isSPFRecord(txt) {
			record = txt
			n++
		}
	}
	if n == 1 {
		if err := checkRecord(record); err != nil {
			if g.syntaxErr == nil {
				g.syntaxErr = &syntaxError{domain: qname, err: err}
			}
			// Neither IsNotFound nor temporary: the library answers
			// permerror (RFC 7208 §4.6).
			return nil, &net.DNSError{Err: g.syntaxErr.Error(), Name: qname}
		}
	}
	return txts, nil
}

// LookupMX implements Resolver.
func (g *guard) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	qname, ok := queryName(name)
	if !ok {
		return nil, notFound(name)
	}
	mxs, err := g.r.LookupMX(ctx, qname)
	return mxs, dnsError(err, qname)
}

// LookupIPAddr implements Resolver.
func (g *guard) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	qname, ok := queryName(host)
	if !ok {
		return nil, notFound(host)
	}
	ips, err := g.r.LookupIPAddr(ctx, qname)
	return ips, dnsError(err, qname)
}

// LookupAddr implements Resolver. addr is an IP address, not a name.
func (g *guard) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	names, err := g.r.LookupAddr(ctx, addr)
	return names, dnsError(err, addr)
}

// syntaxError is a syntax error in a published SPF record (RFC 7208 §4.6,
// §12); it makes the result permerror.
type syntaxError struct {
	domain string // the domain that published the record
	err    error
}

func (e *syntaxError) Error() string {
	return "spf: syntax error in the record of " + e.domain + ": " + e.err.Error()
}

func (e *syntaxError) Unwrap() error { return e.err }

// isSPFRecord reports whether a TXT record is an SPF record: "v=spf1",
// case-insensitive, followed by a space or the end (RFC 7208 §4.5), the same
// test blitiri.com.ar/go/spf applies.
func isSPFRecord(txt string) bool {
	const version = "v=spf1"
	if len(txt) < len(version) || !strings.EqualFold(txt[:len(version)], version) {
		return false
	}
	return len(txt) == len(version) || txt[len(version)] == ' '
}

// dnsError turns any resolver error into an unwrapped *net.DNSError, which
// is the only kind blitiri.com.ar/go/spf classifies.
func dnsError(err error, name string) error {
	if err == nil {
		return nil
	}
	var de *net.DNSError
	if errors.As(err, &de) {
		return de
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &net.DNSError{Err: err.Error(), Name: name, IsTimeout: true}
	}
	// Anything we cannot classify is transient: temperror invites a retry,
	// permerror would be a lasting verdict on a domain that did nothing
	// wrong (RFC 7208 §2.6.6, §2.6.7).
	return &net.DNSError{Err: err.Error(), Name: name, IsTemporary: true}
}

// notFound is the error for a name that cannot exist in the DNS.
func notFound(name string) error {
	return &net.DNSError{Err: "invalid domain name", Name: name, IsNotFound: true}
}

// queryName returns the name to query for name, and false if no DNS query
// can be formed from it (RFC 7208 §4.3: malformed names do not exist).
// A name longer than 253 octets loses labels from the left until it fits
// (RFC 7208 §7.3).
func queryName(name string) (string, bool) {
	trimmed := strings.TrimSuffix(name, ".")
	if len(trimmed) <= 253 {
		// The common case: the name as given, without allocating.
		if !validLabels(trimmed) {
			return "", false
		}
		return name, true
	}
	for len(trimmed) > 253 {
		i := strings.IndexByte(trimmed, '.')
		if i < 0 {
			return "", false
		}
		trimmed = trimmed[i+1:]
	}
	if !validLabels(trimmed) {
		return "", false
	}
	if len(trimmed) < len(name) && strings.HasSuffix(name, ".") {
		trimmed += "."
	}
	return trimmed, true
}

// validLabels reports whether name, without a trailing dot, is a sequence of
// one or more labels of 1 to 63 octets (RFC 1035 §2.3.4).
func validLabels(name string) bool {
	if name == "" {
		return false
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
	}
	return true
}
