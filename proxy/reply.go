package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	"mxguard/internal/smtpreply"
	"mxguard/policy"
)

// The backend's replies are read strictly: a reply that is malformed, or
// that does not answer the command it was read for, means mxguard and the
// backend no longer agree on which reply is whose. Such a connection is
// closed and the client gets 451, never a relayed reply that might be a
// 250 for a message the backend did not store (contract 1).

// maxReplyLine is the longest reply line RFC 5321 §4.5.3.1.5 allows,
// CRLF included; maxReplyLines bounds the lines of one reply.
const (
	maxReplyLine  = smtpreply.MaxLine
	maxReplyLines = 100
)

// errOutOfStep marks a reply that does not answer the command it was read
// for: the backend and mxguard no longer agree on which reply is whose, so
// no later reply on the connection can be trusted either.
var errOutOfStep = errors.New("reply out of step")

// readLines reads one reply and returns it with the text of each line.
// Anything RFC 5321 §4.2 does not allow is a broken connection, never a
// reply to relay: a line not ended by CRLF or longer than 512 octets, a
// code that is not three digits from 200 to 599, a separator other than SP
// or '-', a line whose code differs from the first line's (§4.2.1: "451-"
// then "250 " is neither a refusal nor a success), or a control character
// in the text. A bare CR is refused rather than cleaned up: whoever reads
// the relayed text could take it for a line break, and a reply that is
// malformed may not be the answer to our command at all.
func (b *bconn) readLines(timeout time.Duration) (smtpreply.Reply, []string, error) {
	if now := time.Now(); b.rd.renew(now, timeout) {
		_ = b.c.SetReadDeadline(now.Add(timeout))
	}
	var lines []string
	code := 0
	for n := 0; ; n++ {
		line, err := b.r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return smtpreply.Reply{}, nil, ioErr("read", fmt.Errorf("%w: reply line longer than %d octets", errOutOfStep, maxReplyLine))
		}
		if err != nil {
			return smtpreply.Reply{}, nil, ioErr("read", err)
		}
		c, text, last, why := parseReplyLine(line)
		switch {
		case why == "" && n > 0 && c != code:
			why = fmt.Sprintf("code %d in a reply that began with %d", c, code)
		case why == "" && n >= maxReplyLines:
			why = fmt.Sprintf("more than %d lines", maxReplyLines)
		}
		if why != "" {
			return smtpreply.Reply{}, nil, ioErr("read", fmt.Errorf("%w: malformed reply line %q: %s", errOutOfStep, line, why))
		}
		code = c
		lines = append(lines, text)
		if last {
			rep := smtpreply.Reply{Code: code}
			rep.Enhanced, rep.Text = smtpreply.SplitEnhanced(code, text)
			return rep, lines, nil
		}
	}
}

// parseReplyLine splits one reply line, CRLF included, into its code and
// text; last is false for a continuation line ("250-"). why says what is
// wrong with a malformed line ("" when nothing is).
func parseReplyLine(line []byte) (code int, text string, last bool, why string) {
	if len(line) > maxReplyLine {
		return 0, "", false, fmt.Sprintf("longer than %d octets", maxReplyLine)
	}
	s, ok := bytes.CutSuffix(line, []byte("\r\n"))
	if !ok {
		return 0, "", false, "not ended by CRLF"
	}
	if len(s) < 3 || s[0] < '2' || s[0] > '5' || !isDigit(s[1]) || !isDigit(s[2]) {
		return 0, "", false, "no reply code from 200 to 599"
	}
	code = int(s[0]-'0')*100 + int(s[1]-'0')*10 + int(s[2]-'0')
	if len(s) == 3 {
		return code, "", true, ""
	}
	if s[3] != ' ' && s[3] != '-' {
		return 0, "", false, "code not followed by SP or '-'"
	}
	for _, c := range s[4:] {
		// RFC 5321 §4.2: textstring is HT and printable; octets above
		// 127 are UTF-8 text (RFC 6531 §3.7.4).
		if c < ' ' && c != '\t' || c == 0x7f {
			return 0, "", false, "control character in the text"
		}
	}
	return code, string(s[4:]), s[3] == ' ', ""
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// inStep fails when the backend has sent more than the replies read so
// far. Every command gets exactly one reply, in order (RFC 5321 §4.2,
// RFC 2920 §3.1), so these octets answer nothing we sent; reading them as
// the next command's reply would shift every reply after it (an RCPT's 250
// read as the answer to the end of data), so the connection is broken.
// Only octets already buffered are seen (quiet also looks at the socket,
// before the end of data), and the code checks on every later reply catch
// a shift that starts after this look.
func (b *bconn) inStep(op string) error {
	n := b.r.Buffered()
	if n == 0 {
		return nil
	}
	peek, _ := b.r.Peek(min(n, 64))
	return ioErr(op, fmt.Errorf("%w: %d octets sent unasked, starting %q", errOutOfStep, n, peek))
}

// quiet is inStep that also looks at the socket, without waiting: octets
// the backend sent that have not been read yet are out of step too. Only a
// plain TCP or Unix connection is looked at: under TLS the socket may hold
// records that are no reply (TLS 1.3 session tickets).
func (b *bconn) quiet(op string) error {
	if err := b.inStep(op); err != nil {
		return err
	}
	if b.raw == nil || b.tls {
		return nil
	}
	b.npeek = 0
	_ = b.raw.Read(b.peek)
	if b.npeek <= 0 {
		return nil
	}
	return ioErr(op, fmt.Errorf("%w: octets sent unasked before the end of data, starting %q", errOutOfStep, b.peeked[:b.npeek]))
}

// answers checks that r is a reply RFC 5321 §4.3.2 allows to op: one of
// the success codes ok, or a refusal (4xx, 5xx). Any other code answers
// some other command, such as a 250 read where DATA's 354 belongs: the
// connection is out of step.
func answers(op string, r smtpreply.Reply, ok ...int) error {
	if r.Code >= 400 {
		return nil
	}
	for _, c := range ok {
		if r.Code == c {
			return nil
		}
	}
	return ioErr(op, fmt.Errorf("%w: backend answers %s", errOutOfStep, r))
}

// relay turns a backend reply into ours: same code, the backend's enhanced
// code when it gave one in the right class, and its text with our session.
func relay(tx *policy.Transaction, r smtpreply.Reply) Delivery {
	rep := smtpreply.Reply{Code: r.Code, Enhanced: r.Enhanced, Text: r.Text}
	if rep.Enhanced.Class() != r.Code/100 {
		rep.Enhanced = smtpreply.Other(r.Code / 100)
	}
	return Delivery{Reply: rep.WithSession(tx.Session), Backend: r.String()}
}

// checkGroup checks the replies to MAIL, each RCPT and, when pipelined,
// DATA (RFC 5321 §4.3.2: MAIL 250; RCPT 250 or 251; DATA 354; each may be
// refused with 4xx or 5xx).
func checkGroup(replies []smtpreply.Reply, withData bool) error {
	rcpts := replies[1:]
	if withData {
		rcpts = rcpts[:len(rcpts)-1]
		if err := answers("DATA", replies[len(replies)-1], smtpreply.C354Continue); err != nil {
			return err
		}
	}
	if err := answers("MAIL", replies[0], smtpreply.C250Completed); err != nil {
		return err
	}
	for _, r := range rcpts {
		if err := answers("RCPT", r, smtpreply.C250Completed, smtpreply.C251UserNotLocalWillFwd); err != nil {
			return err
		}
	}
	return nil
}

// verb is a command line's verb, for errors.
func verb(cmd string) string {
	v, _, _ := strings.Cut(cmd, " ")
	return v
}
