// Package policy holds the transaction model that the proxy fills in as an
// SMTP session goes on, the engine that decides what happens at each stage,
// and the Verdict it returns.
//
// The proxy never decides anything itself: it records what it saw on the
// Transaction and asks the Engine. Checks and rules (later) only add facts
// and matches; the shape of Decide stays the same.
package policy

import (
	"mxguard/checks/rcpt"
	"net/netip"
	"strings"
	"time"

	"mxguard/checks/check"
	"mxguard/checks/dmarc"
	"mxguard/internal/mailaddr"
	"mxguard/internal/mailhdr"
	"mxguard/rules"
)

// Stage is the point of an SMTP transaction at which a decision is taken.
// It is the checks' stage (package check), named here for the proxy and the
// tools, which speak to the engine and not to the checks.
type Stage = check.Stage

// The stages, in the order a session reaches them.
const (
	StageConnect = check.Connect
	StageHelo    = check.HELO
	StageMail    = check.Mail
	StageRcpt    = check.Rcpt
	StageData    = check.Data
)

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
// smtpd_forbid_bare_newline and smtpd_forbid_unauth_pipelining). Rules
// read it as smtp.*.
type SMTPBehaviour struct {
	// RFC 5321 §3.1 has the client wait for the banner; bots that do not
	// are caught by a greet pause.
	Pregreet bool `expr:"pregreet" json:"pregreet" doc:"the client talked before our banner"`
	// RFC 5321 §2.3.8.
	BareLF bool `expr:"bare_lf" json:"bare_lf" doc:"a command line ended in LF without CR"`
	// Where RFC 2920 does not allow it: before EHLO, after HELO, or after
	// a command that must end a group (EHLO, DATA, STARTTLS, …).
	UnauthPipelining bool `expr:"unauth_pipelining" json:"unauth_pipelining" doc:"commands were sent ahead of our replies where RFC 2920 forbids it"`
	// RFC 5321 §4.5.3.1.4's 512 octets.
	LongCommand bool `expr:"long_command" json:"long_command" doc:"a command line was longer than 512 octets"`
	// RFC 5321 §4.1.1.1.
	BadHELO      bool `expr:"bad_helo" json:"bad_helo" doc:"the HELO name is neither a domain name (ASCII) nor an address literal holding an IP address"`
	HELONotFQDN  bool `expr:"helo_not_fqdn" json:"helo_not_fqdn" doc:"the HELO name is a domain name without a dot (a machine's short name, localhost)"`
	HELOIsUs     bool `expr:"helo_is_us" json:"helo_is_us" doc:"the HELO name is our hostname, one of our domains or our address"`
	Errors       int  `expr:"errors" json:"errors" doc:"commands refused as malformed or out of sequence so far"`
	UnknownRcpts int  `expr:"unknown_rcpts" json:"unknown_rcpts" doc:"recipients refused as unknown so far in the session"`
}

// Protocol holds what the proxy saw in the message that is not how a
// conforming SMTP client sends it. RFC 5321 §2.3.8 allows only CRLF as a
// line ending; the other variants are what SMTP smuggling is made of.
// Rules read it as protocol.*.
type Protocol struct {
	BareLF bool `expr:"bare_lf" json:"bare_lf" doc:"a line of the message ended in LF without CR"`
	BareCR bool `expr:"bare_cr" json:"bare_cr" doc:"the message held a CR not followed by LF"`
	NUL    bool `expr:"nul" json:"nul" doc:"the message held a NUL byte"`
	// <LF>.<LF>, <CR><LF>.<LF>, <LF>.<CR><LF>, …: a sequence that some
	// other server could take for the end of the message.
	BadTerminator bool `expr:"bad_terminator" json:"bad_terminator" doc:"a lone-dot line ended in something other than CRLF: an SMTP smuggling attempt"`
	// RFC 5321 §4.5.3.1.6's 1000 octets, CRLF included.
	LongLine bool `expr:"long_line" json:"long_line" doc:"a line of the message was longer than 1000 octets (RFC 5321 §4.5.3.1.6)"`
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

	found        Found     // the checks' facts, stored by the engine only
	fromFacts    FromFacts // the From header, read by the engine at data
	rcptVerify   rcpt.Facts
	rcptChecks   map[string]CheckRecord // per-recipient answers ("NAME <addr>"), for the log
	replayRcpts  map[string]CheckRecord // logged per-recipient answers, for replay
	rcptNow      map[string]CheckRecord // the per-recipient checks' answers about Rcpt
	ran          []ran                  // checks run for this decision, to record after it
	rcptRan      []ran                  // transaction-wide checks that ran at rcpt, told every recipient's decision
	localDomains []string               // the session's domains, for the header checks
	taps         map[string]check.Tap   // the data-stage checks' taps, by check name
	headerBytes  []byte                 // Header's answer, once read
	split        mailhdr.Split          // HeaderSplit's answer
	splitErr     error
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
