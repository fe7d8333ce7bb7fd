package proxy

import (
	"strings"
	"time"

	"mxguard/policy"
)

// receivedHeader renders the trace header of RFC 5321 §4.4 that we prepend
// to every forwarded message:
//
//	Received: from HELO (PTR [IP])
//		by HOSTNAME (mxguard) with ESMTPS id TXID
//		(version=TLS1.3 cipher=...)
//		for <rcpt>; DATE
//
// The "with" keyword follows RFC 3848 and RFC 6531 §3.7.3. The "for" clause
// names the recipient only when there is exactly one, so that a message to
// many does not tell each of them who else got it.
//
// A HELO name that is not a domain or an address literal (the rules may let
// one through) is not written after "from": the client's address literal
// is, and the name follows in a comment, in the form shownHELO gives it
// (the comment is the CFWS before "by" that RFC 5321 §4.4 allows).
func receivedHeader(hostname string, tx *policy.Transaction, now time.Time) string {
	c := tx.Client
	helo, valid := downstreamHELO(c)
	var sb strings.Builder
	sb.Grow(256)
	sb.WriteString("Received: from ")
	sb.WriteString(helo)
	sb.WriteString(" (")
	if c.PTR != "" {
		sb.WriteString(c.PTR)
		sb.WriteByte(' ')
	}
	sb.WriteString(addressLiteral(c))
	sb.WriteByte(')')
	if !valid && c.HELO != "" {
		sb.WriteString("\r\n\t(HELO ")
		sb.WriteString(shownHELO(c.HELO))
		sb.WriteByte(')')
	}
	sb.WriteString("\r\n\tby ")
	sb.WriteString(hostname)
	sb.WriteString(" (mxguard) with ")
	proto := "SMTP"
	switch {
	case tx.SMTPUTF8:
		proto = "UTF8SMTP"
	case c.ESMTP:
		proto = "ESMTP"
	}
	if c.TLS != nil {
		proto += "S"
	}
	sb.WriteString(proto)
	sb.WriteString(" id ")
	sb.WriteString(tx.ID)
	if c.TLS != nil {
		sb.WriteString("\r\n\t(version=")
		sb.WriteString(strings.ReplaceAll(c.TLS.Version, " ", ""))
		sb.WriteString(" cipher=")
		sb.WriteString(c.TLS.CipherSuite)
		sb.WriteByte(')')
	}
	if len(tx.Rcpts) == 1 {
		sb.WriteString("\r\n\tfor <")
		sb.WriteString(tx.Rcpts[0])
		sb.WriteByte('>')
	}
	sb.WriteString(";\r\n\t")
	sb.WriteString(now.Format(time.RFC1123Z))
	sb.WriteString("\r\n")
	return sb.String()
}

// addressLiteral is the client's address as an RFC 5321 §4.1.3 address
// literal: [192.0.2.1] or [IPv6:2001:db8::1].
func addressLiteral(c policy.Client) string {
	ip := c.Addr.Addr().Unmap()
	if ip.Is6() {
		return "[IPv6:" + ip.String() + "]"
	}
	return "[" + ip.String() + "]"
}

// downstreamHELO is the client's HELO name as we pass it on, in the
// Received field, the XCLIENT and XFORWARD HELO attribute and the EHLO
// after XCLIENT: the name itself when it is a domain or an address literal
// (RFC 5321 §4.1.3), else, with valid false, the client's address literal,
// which RFC 5321 §4.1.4 asks a client without a usable name to send. The
// rules may accept any name, but what we write downstream is read as ours.
func downstreamHELO(c policy.Client) (name string, valid bool) {
	if c.HELO != "" && validHELO(c.HELO) {
		return c.HELO, true
	}
	return addressLiteral(c), false
}

// shownHELO is an invalid HELO name as a Received comment shows it: each
// byte that is not printable ASCII, and each of <>()\";:@, becomes '?'.
// That is what Postfix's smtpd does to every HELO name (printable() and
// neuter()); it keeps the comment a comment and the field ASCII (RFC 5322
// §3.2.2), whatever the client sent.
func shownHELO(h string) string {
	b := []byte(h)
	for i, c := range b {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`<>()\";:@`, c) >= 0 {
			b[i] = '?'
		}
	}
	return string(b)
}
