// Package policy holds the transaction model that the proxy fills in as an
// SMTP session goes on, the engine that decides what happens at each stage,
// and the Verdict it returns.
//
// The proxy never decides anything itself: it records what it saw on the
// Transaction and asks the Engine. Checks and rules (later) only add facts
// and matches; the shape of Decide stays the same.
package policy

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"mxguard/checks/dkim"
	"mxguard/checks/dmarc"
	"mxguard/internal/mailaddr"
	"mxguard/internal/mailhdr"
	"mxguard/rules"
)

// Stage is the point of an SMTP transaction at which a decision is taken.
// Early stages reject early: a connect-stage refusal costs no DNS walk and no
// message transfer.
type Stage int

// The stages, in the order a session reaches them.
const (
	StageConnect Stage = iota + 1
	StageHelo
	StageMail
	StageRcpt
	StageData
)

var stageNames = map[Stage]string{
	StageConnect: "connect",
	StageHelo:    "helo",
	StageMail:    "mail",
	StageRcpt:    "rcpt",
	StageData:    "data",
}

// String returns the name used in rules files and logs.
func (s Stage) String() string {
	if n, ok := stageNames[s]; ok {
		return n
	}
	return fmt.Sprintf("stage(%d)", int(s))
}

// TLSInfo describes the client's TLS session, when STARTTLS was used.
type TLSInfo struct {
	Version     string `json:"version"`
	CipherSuite string `json:"cipher"`
	ServerName  string `json:"server_name,omitempty"`
}

// Client is what we know about the peer of a session. Addr is the address
// every check and log uses: the one carried by the PROXY protocol when a load
// balancer stands in front of us, else the TCP peer.
type Client struct {
	Addr netip.AddrPort
	PTR  string
	HELO string
	// ESMTP is true when the client greeted with EHLO rather than HELO.
	ESMTP bool
	TLS   *TLSInfo
	// SMTP is how the client has behaved on the wire so far. It is shared
	// by the session's transactions and grows as the session goes on.
	SMTP *SMTPBehaviour
}

// SMTPBehaviour is what the proxy saw of a client's conduct, the input of
// the screening rules (Postfix's postscreen tests, and its
// smtpd_forbid_bare_newline and smtpd_forbid_unauth_pipelining).
type SMTPBehaviour struct {
	// Pregreet: the client talked before our banner (RFC 5321 §3.1 has the
	// client wait for it); bots that do not are caught by a greet pause.
	Pregreet bool
	// BareLF: a command line ended in LF without CR (RFC 5321 §2.3.8).
	BareLF bool
	// UnauthPipelining: the client sent commands ahead of our replies
	// where RFC 2920 does not allow it (before EHLO, after HELO, or after
	// a command that must end a group: EHLO, DATA, STARTTLS, …).
	UnauthPipelining bool
	// LongCommand: a command line over RFC 5321 §4.5.3.1.4's 512 octets.
	LongCommand bool
	// BadHELO: the HELO/EHLO argument is neither a domain name nor an
	// address literal (RFC 5321 §4.1.1.1).
	BadHELO bool
	// HELONotFQDN: the HELO/EHLO argument is a domain name without a dot.
	HELONotFQDN bool
	// HELOIsUs: the client greeted with our own name or address.
	HELOIsUs bool
	// Errors counts commands refused as malformed or out of sequence.
	Errors int
	// UnknownRcpts counts recipients refused as unknown in this session.
	UnknownRcpts int
}

// Protocol holds what the proxy saw on the wire that is not how a conforming
// SMTP client talks. RFC 5321 §2.3.8 allows only CRLF as a line ending; the
// other variants are what SMTP smuggling is made of.
type Protocol struct {
	// BareLF is set when a line of the message ended in LF without CR.
	BareLF bool
	// BareCR is set when the message held a CR not followed by LF.
	BareCR bool
	// NUL is set when the message held a NUL byte.
	NUL bool
	// BadTerminator is set when a line holding a lone dot ended in anything
	// but CRLF (<LF>.<LF>, <CR><LF>.<LF>, <LF>.<CR><LF>, …): a sequence that
	// some other server could take for the end of the message.
	BadTerminator bool
	// LongLine is set when a text line exceeded RFC 5321 §4.5.3.1.6's 1000
	// octets, CRLF included.
	LongLine bool
}

// Ambiguous reports whether the message holds anything another server might
// read differently from us. Such a message is never forwarded as it came.
func (p Protocol) Ambiguous() bool {
	return p.BareLF || p.BareCR || p.NUL || p.BadTerminator
}

// Transaction is one MAIL transaction, with the session facts it inherits.
// The proxy fills it in as commands arrive; the engine reads it.
type Transaction struct {
	// Session is the id of the SMTP session, quoted in every reply we send
	// so that an admin can find the log line from a bounce.
	Session string
	// ID is the transaction id, Session plus a sequence number.
	ID     string
	Start  time.Time
	Client Client
	// MailFrom is the reverse path without angle brackets ("" for <>).
	MailFrom string
	// Rcpts are the recipients accepted so far.
	Rcpts []string
	// Rcpt is the recipient being decided at StageRcpt; it joins Rcpts only
	// when the verdict accepts it.
	Rcpt string
	// Size is the size of the message content in octets, after the proxy
	// made its line endings canonical.
	Size int64
	// SMTPUTF8 and Body8Bit record the MAIL parameters the client gave.
	SMTPUTF8 bool
	Body8Bit bool
	Protocol Protocol
	// MessageID is the Message-ID header's value, set at the end of DATA.
	MessageID string

	// What the engine found, kept for the rest of the transaction and for
	// the verdict log.
	Checks  map[string]CheckRecord
	Matches []RuleMatch
	Score   float64
	// Headers are added to the message when it is forwarded (tag and
	// quarantine).
	Headers []Header
	// Refused are the recipients refused at RCPT.
	Refused []RcptRefusal

	// Content is the message, set by the proxy before the data stage.
	Content Content

	auth         authFacts
	rcptVerify   RcptVerifyFacts
	rcptChecks   map[string]CheckRecord // per-recipient verification, for the log
	replayRcpts  map[string]CheckRecord // logged verification answers, for replay
	localDomains []string               // the session's domains, for the header checks
	screen       screenFacts
	dkimPrefetch *dkim.Prefetcher
	headerBytes  []byte        // Header's answer, once read
	split        mailhdr.Split // HeaderSplit's answer
	splitErr     error
	fromDone     bool
	from         *dmarc.ParsedFrom // the From domain, parsed once (fromFacts)
	inherited    bool              // the session's connect and HELO results are in
	accepted     bool              // an enforced accept rule let the transaction through
	quarantined  string            // what quarantined it: a rule's name or "score"
	facts        Facts
}

// Header is a header field added to a forwarded message.
type Header = rules.Header

// Domain returns the domain part of an address normalised as mxguard shows
// domains (mailaddr.NormalizeDomain: lower case, no trailing dot), or ""
// when the address has none.
func Domain(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return ""
	}
	return mailaddr.NormalizeDomain(addr[i+1:])
}
