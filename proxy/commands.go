package proxy

import (
	"context"
	"crypto/tls"
	"net/netip"
	"strconv"
	"strings"

	"mxguard/internal/mailaddr"
	"mxguard/internal/smtpreply"
	"mxguard/policy"
)

// groupEnders are the commands after which a client must wait for our
// reply (RFC 2920 §3.1, RFC 3207 §4 for STARTTLS).
var groupEnders = map[string]bool{"EHLO": true, "HELO": true, "DATA": true, "VRFY": true, "EXPN": true,
	"TURN": true, "NOOP": true, "STARTTLS": true, "AUTH": true}

// junkCommands move a session nothing forward: a client may send them to
// stay connected without ever sending mail. ETRN is one too, but it is not
// implemented here, so it is an error anyway.
var junkCommands = map[string]bool{"NOOP": true, "RSET": true, "VRFY": true, "HELP": true}

// junkCommand counts a command that moves nothing forward; past
// MaxJunkCommands each counts as an error, as with Postfix's
// smtpd_junk_command_limit, so MaxErrors ends the session.
func (s *session) junkCommand() {
	s.junk++
	if s.junk > s.opts.MaxJunkCommands {
		s.errors++
		s.client.SMTP.Errors = s.errors
	}
}

// nonSMTP are the first words of other protocols sent to port 25 by
// scanners and proxies: HTTP, and POP3 logins.
var nonSMTP = map[string]bool{"GET": true, "POST": true, "HEAD": true, "PUT": true, "OPTIONS": true,
	"CONNECT": true, "USER": true, "PASS": true}

// command carries out one command line and returns its reply.
func (s *session) command(line string) smtpreply.Reply {
	verb, arg, _ := strings.Cut(line, " ")
	verb = strings.ToUpper(verb)
	arg = strings.TrimSpace(arg)
	if s.buffered() > 0 && (groupEnders[verb] || !s.client.ESMTP) && verb != "QUIT" && verb != "BDAT" {
		s.client.SMTP.UnauthPipelining = true
	}
	if junkCommands[verb] {
		s.junkCommand()
	}
	if nonSMTP[verb] {
		// Not a mail client: answer once and close, like postscreen.
		s.logVerdict(s.newTx(), policy.Outcome{Stage: policy.StageConnect, Action: "reject", Reason: "non-smtp"}, nil)
		s.log.Info("non-SMTP client", "verb", verb)
		s.quit = true
		return replyNotSMTP.WithSession(s.id)
	}
	if hasControl(line) {
		// A CR, NUL or other control octet inside a command would end up in
		// our Received header or in the backend's parser.
		return s.fail(smtpreply.C500BadSyntax, smtpreply.Se5Proto5SyntaxErr2, "control character in command")
	}
	switch verb {
	case "EHLO", "HELO":
		return s.cmdHello(verb == "EHLO", arg)
	case "MAIL":
		return s.cmdMail(arg)
	case "RCPT":
		return s.cmdRcpt(arg)
	case "DATA":
		return s.cmdData(arg)
	case "BDAT":
		return s.cmdBdat(arg)
	case "RSET":
		s.resetTx()
		return reply(smtpreply.C250Completed, smtpreply.Se2Other00, "Ok")
	case "NOOP":
		return reply(smtpreply.C250Completed, smtpreply.Se2Other00, "Ok")
	case "QUIT":
		s.quit = true
		return reply(smtpreply.C221Closing, smtpreply.Se2Other00, s.opts.Hostname+" closing connection")
	case "VRFY":
		return reply(smtpreply.C252WithoutVrfy, smtpreply.Se2Proto5Other0, "cannot VRFY user, but will take a message for it")
	case "HELP":
		return reply(smtpreply.C214Help, smtpreply.Se2Other00, "see RFC 5321")
	case "STARTTLS":
		return s.cmdStartTLS(arg)
	case "EXPN", "AUTH", "TURN", "ETRN", "SEND", "SOML", "SAML":
		return s.fail(smtpreply.C502CmdNotImpl, smtpreply.Se5Proto5InvalidCmd1, verb+" not implemented")
	default:
		return s.fail(smtpreply.C500BadSyntax, smtpreply.Se5Proto5SyntaxErr2, "command not recognized")
	}
}

func (s *session) cmdHello(ehlo bool, arg string) smtpreply.Reply {
	if arg == "" || strings.ContainsAny(arg, " \t") {
		return s.fail(smtpreply.C501BadParamSyntax, smtpreply.Se5Proto5InvalidArgs4, "syntax: EHLO hostname")
	}
	// RFC 5321 §4.1.4: EHLO resets the transaction state.
	s.resetTx()
	s.client.HELO, s.client.ESMTP = arg, ehlo
	s.client.SMTP.BadHELO = !validHELO(arg)
	s.client.SMTP.HELONotFQDN = !s.client.SMTP.BadHELO && !strings.HasPrefix(arg, "[") && !strings.Contains(strings.TrimSuffix(arg, "."), ".")
	s.client.SMTP.HELOIsUs = s.heloIsUs(arg)
	tx := s.newTx()
	if v := s.pol.Decide(s.ctx, policy.StageHelo, tx); v.Action.Refuses() {
		s.client.HELO = ""
		s.logVerdict(tx, policy.Outcome{Stage: policy.StageHelo, Action: v.Action.String(), Reason: v.Reason}, nil)
		return v.Reply
	}
	if !ehlo {
		return reply(smtpreply.C250Completed, smtpreply.Enhanced{}, s.opts.Hostname)
	}
	ext := []string{
		s.opts.Hostname,
		"PIPELINING",
		"SIZE " + strconv.FormatInt(s.opts.MaxMessageBytes, 10),
		"8BITMIME",
		"SMTPUTF8",
		"ENHANCEDSTATUSCODES",
		"CHUNKING",
	}
	if s.tls != nil && s.client.TLS == nil {
		ext = append(ext, "STARTTLS")
	}
	return smtpreply.Multiline(smtpreply.C250Completed, ext...)
}

func (s *session) cmdMail(arg string) smtpreply.Reply {
	switch {
	case s.client.HELO == "":
		return s.fail(smtpreply.C503BadCmdSeq, smtpreply.Se5Proto5InvalidCmd1, "send EHLO first")
	case s.tx != nil:
		return s.fail(smtpreply.C503BadCmdSeq, smtpreply.Se5Proto5InvalidCmd1, "nested MAIL command")
	}
	s.mu.Lock()
	draining := s.draining
	s.mu.Unlock()
	if draining {
		s.quit = true
		return s.replyShuttingDown()
	}
	rest, ok := cutPrefixFold(arg, "FROM:")
	if !ok {
		return s.fail(smtpreply.C501BadParamSyntax, smtpreply.Se5Proto5InvalidArgs4, "syntax: MAIL FROM:<address>")
	}
	ok, key, reserved := s.rate.allowMail(s.ctx, s.client.Addr.Addr(), &s.lease)
	s.rcptReserved = reserved
	if !ok {
		// RFC 5321 §4.2.5: 451 asks the sender to come back later.
		return replyRateMessages(key, s.id)
	}
	addr, params, err := parsePath(rest)
	if err != nil {
		return s.fail(smtpreply.C501BadParamSyntax, smtpreply.Se5Addr1BadSenderSyntax7, "bad sender address syntax")
	}
	s.txSeq++
	tx := s.newTx()
	tx.ID = s.id + "." + strconv.Itoa(s.txSeq)
	tx.MailFrom = addr
	kv, err := parseParams(params)
	if err != nil {
		return s.fail(smtpreply.C501BadParamSyntax, smtpreply.Se5Proto5InvalidArgs4, "bad MAIL parameters")
	}
	for k, v := range kv {
		switch k {
		case "SIZE":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return s.fail(smtpreply.C501BadParamSyntax, smtpreply.Se5Proto5InvalidArgs4, "bad SIZE parameter")
			}
			if n > s.opts.MaxMessageBytes {
				// RFC 1870 §6.1
				return replyTooBig.WithSession(s.id)
			}
		case "BODY":
			switch strings.ToUpper(v) {
			case "7BIT":
			case "8BITMIME":
				tx.Body8Bit = true
			default:
				return s.fail(smtpreply.C501BadParamSyntax, smtpreply.Se5Proto5InvalidArgs4, "unsupported BODY type")
			}
		case "SMTPUTF8":
			if v != "" {
				// RFC 6531 §3.4: the parameter takes no value.
				return s.fail(smtpreply.C501BadParamSyntax, smtpreply.Se5Proto5InvalidArgs4, "SMTPUTF8 takes no value")
			}
			tx.SMTPUTF8 = true
		default:
			// RFC 5321 §4.1.1.11: parameters of extensions we did not
			// advertise are refused with 555.
			return s.fail(smtpreply.C555UnrecognizedAddrParam, smtpreply.Se5Proto5InvalidArgs4, "unsupported MAIL parameter "+k)
		}
	}
	if !tx.SMTPUTF8 && !isASCII(addr) {
		return s.fail(smtpreply.C553BadMailbox, smtpreply.Se5Media6NonASCIIAddr7, "non-ASCII address needs SMTPUTF8")
	}
	if b, ok := s.opts.Backend.(interface{ RefusesSMTPUTF8() bool }); ok && tx.SMTPUTF8 && b.RefusesSMTPUTF8() {
		// RFC 6531 §3.5: refuse before the message is sent, not after.
		return replyNoUTF8Backend.WithSession(s.id)
	}
	if v := s.pol.Decide(s.beginTx(), policy.StageMail, tx); v.Action.Refuses() {
		s.endTx()
		s.logVerdict(tx, policy.Outcome{Stage: policy.StageMail, Action: v.Action.String(), Reason: v.Reason}, nil)
		return v.Reply
	}
	s.tx = tx
	return reply(smtpreply.C250Completed, smtpreply.Se2Addr1Other0, "Ok")
}

func (s *session) cmdRcpt(arg string) smtpreply.Reply {
	if s.tx == nil {
		return s.fail(smtpreply.C503BadCmdSeq, smtpreply.Se5Proto5InvalidCmd1, "send MAIL first")
	}
	if s.bdat != nil {
		return s.fail(smtpreply.C503BadCmdSeq, smtpreply.Se5Proto5InvalidCmd1, "RCPT not allowed during BDAT transfer")
	}
	rest, ok := cutPrefixFold(arg, "TO:")
	if !ok {
		return s.fail(smtpreply.C501BadParamSyntax, smtpreply.Se5Proto5InvalidArgs4, "syntax: RCPT TO:<address>")
	}
	addr, params, err := parsePath(rest)
	if p, ok := postmasterPath(rest); ok {
		// RFC 5321 §4.1.1.3 and §4.5.1: <Postmaster> without a domain is
		// always accepted; the backend gets an address it knows.
		addr, params, err = "postmaster", p, nil
		if s.opts.Postmaster != "" {
			addr = s.opts.Postmaster
		}
	}
	if err != nil || addr == "" {
		return s.fail(smtpreply.C501BadParamSyntax, smtpreply.Se5Addr1BadDestSyntax3, "bad recipient address syntax")
	}
	if params != "" {
		return s.fail(smtpreply.C555UnrecognizedAddrParam, smtpreply.Se5Proto5InvalidArgs4, "unsupported RCPT parameter")
	}
	if !s.tx.SMTPUTF8 && !isASCII(addr) {
		return s.fail(smtpreply.C553BadMailbox, smtpreply.Se5Media6NonASCIIAddr7, "non-ASCII address needs SMTPUTF8")
	}
	if len(s.tx.Rcpts) >= s.opts.MaxRecipients {
		// RFC 5321 §4.5.3.1.10: 452 tells the client to send the rest in
		// another transaction.
		return reply(smtpreply.C452StorageFull, smtpreply.Se4Proto5TooManyRcpts3, "too many recipients")
	}
	s.tx.Rcpt = addr
	v := s.pol.Decide(s.txCtx, policy.StageRcpt, s.tx)
	s.tx.Rcpt = ""
	if v.Action.Refuses() {
		s.tx.Refused = append(s.tx.Refused, policy.RcptRefusal{Rcpt: addr, Reply: v.Reply.String(), Rule: v.Reason})
		return v.Reply
	}
	switch {
	case s.rcptReserved:
		// Charged with the MAIL that started the transaction.
		s.rcptReserved = false
	case s.rate.useRcpt(&s.lease):
		// Charged with the MAIL too: one of the recipients it reserved
		// beyond the first.
	default:
		ok, key := s.rate.allow(s.ctx, rateRcpt, s.client.Addr.Addr())
		if ok {
			break
		}
		rep := replyRateRecipients(key, s.id)
		s.tx.Refused = append(s.tx.Refused, policy.RcptRefusal{Rcpt: addr, Reply: rep.String(), Rule: "rate"})
		return rep
	}
	s.tx.Rcpts = append(s.tx.Rcpts, addr)
	// The next MAIL reserves as many recipients as this transaction has.
	s.lease.lastRcpts = len(s.tx.Rcpts)
	return reply(smtpreply.C250Completed, smtpreply.Se2Addr1DestValid5, "Ok")
}

// validHELO accepts a domain name or an address literal (RFC 5321 §4.1.3).
// The name is ASCII: RFC 6531 §3.7.1 does not extend EHLO. Only a valid
// name is passed downstream (Received, XCLIENT, XFORWARD); an invalid one
// the rules let through is replaced there by the client's address literal.
func validHELO(h string) bool {
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		lit := strings.TrimPrefix(h[1:len(h)-1], "IPv6:")
		_, err := netip.ParseAddr(lit)
		return err == nil
	}
	return isASCII(h) && validDomain(h)
}

// heloIsUs reports a client greeting us with our own name, one of our
// domains, or the address it connected to: a forger's shortcut.
func (s *session) heloIsUs(h string) bool {
	h = mailaddr.NormalizeDomain(h)
	if mailaddr.ParseDomain(h).Equal(mailaddr.ParseDomain(s.opts.Hostname)) || s.pol.LocalDomain(h) {
		return true
	}
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		lit, err := netip.ParseAddr(strings.TrimPrefix(strings.TrimPrefix(h[1:len(h)-1], "ipv6:"), "IPv6:"))
		local := addrPort(s.conn.LocalAddr())
		return err == nil && local.IsValid() && lit.Unmap() == local.Addr().Unmap()
	}
	return false
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return "", false
	}
	return s[len(prefix):], true
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return true
		}
	}
	return false
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func (s *session) cmdStartTLS(arg string) smtpreply.Reply {
	switch {
	case s.tls == nil:
		return s.fail(smtpreply.C502CmdNotImpl, smtpreply.Se5Proto5InvalidCmd1, "STARTTLS not available")
	case s.client.TLS != nil:
		return s.fail(smtpreply.C503BadCmdSeq, smtpreply.Se5Proto5InvalidCmd1, "TLS already active")
	case arg != "":
		return s.fail(smtpreply.C501BadParamSyntax, smtpreply.Se5Proto5InvalidArgs4, "syntax: STARTTLS")
	}
	// Anything the client pipelined after STARTTLS arrived in clear text and
	// must not be taken as if it came over TLS (CVE-2011-0411).
	if n := s.buffered(); n > 0 {
		s.discardBuffered()
		s.log.Info("discarded plaintext pipelined after STARTTLS", "bytes", n)
	}
	// The 220 goes out now: the client's next octets are its handshake
	// (RFC 3207 §4), and after it there is no reply to give.
	s.send(reply(smtpreply.C220ServiceReady, smtpreply.Se2Other00, "ready to start TLS"))
	s.flush()
	tc := tls.Server(s.conn, s.tls)
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.CommandTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		s.log.Info("TLS handshake failed", "err", err)
		s.quit = true
		_ = s.conn.Close()
		return smtpreply.Reply{}
	}
	s.mu.Lock()
	s.conn = tc
	s.rd.forget()
	s.wd.forget()
	s.mu.Unlock()
	// TLS keeps its own buffers: the session reads it as any reader,
	// with a buffer it keeps.
	s.raw = nil
	s.src.c = tc
	s.wconn = tc
	if s.r != nil {
		// Empty (what followed STARTTLS was discarded), and it may be
		// message-sized: STARTTLS pipelined behind a message's dot. The
		// next read takes a command-sized one, which TLS then keeps.
		putReader(s.r)
		s.r = nil
	}
	st := tc.ConnectionState()
	// RFC 3207 §4.2: the client must greet again; forget what it said.
	s.resetTx()
	s.client.HELO = ""
	s.client.TLS = &policy.TLSInfo{
		Version:     tls.VersionName(st.Version),
		CipherSuite: tls.CipherSuiteName(st.CipherSuite),
		ServerName:  st.ServerName,
	}
	return smtpreply.Reply{}
}
