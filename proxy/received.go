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
func receivedHeader(hostname string, tx *policy.Transaction, now time.Time) string {
	c := tx.Client
	var sb strings.Builder
	sb.Grow(256)
	sb.WriteString("Received: from ")
	sb.WriteString(c.HELO)
	sb.WriteString(" (")
	if c.PTR != "" {
		sb.WriteString(c.PTR)
		sb.WriteByte(' ')
	}
	sb.WriteByte('[')
	ip := c.Addr.Addr().Unmap()
	if ip.Is6() {
		sb.WriteString("IPv6:") // RFC 5321 §4.1.3 address literal
	}
	sb.WriteString(ip.String())
	sb.WriteString("])\r\n\tby ")
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
