package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"mxguard/internal/confval"
	"mxguard/internal/metrics"
	"mxguard/internal/smtpreply"
	"mxguard/policy"
)

// StartTLSMode is how the forwarder uses STARTTLS with the backend. It is
// the type of the config's backend.starttls, declared once in confval.
type StartTLSMode = confval.StartTLSMode

// The STARTTLS modes.
const (
	StartTLSNone          = confval.StartTLSNone          // never
	StartTLSOpportunistic = confval.StartTLSOpportunistic // when the backend offers it
	StartTLSRequired      = confval.StartTLSRequired      // or no delivery
)

// HandOver is how the original client is passed to the backend. It is the
// type of the config's backend.forward_client, declared once in confval.
type HandOver = confval.HandOver

// The hand-over modes (Postfix's XCLIENT_README and XFORWARD_README).
const (
	HandOverAuto     = confval.HandOverAuto     // XCLIENT with ADDR, else XFORWARD with ADDR, else none
	HandOverXClient  = confval.HandOverXClient  // XCLIENT, or no delivery
	HandOverXForward = confval.HandOverXForward // XFORWARD, or no delivery
	HandOverNone     = confval.HandOverNone
)

// BackendOptions configures the Forwarder.
type BackendOptions struct {
	// Network and Address locate the backend ("tcp", "127.0.0.1:10025";
	// "unix", "/run/dovecot/lmtp").
	Network string
	Address string
	// LMTP speaks RFC 2033 LMTP instead of SMTP.
	LMTP bool
	// Helo is the name sent in EHLO/LHLO; Hostname is ours for Received.
	Helo     string
	Hostname string
	// StartTLS is how STARTTLS is used with the backend
	// (backend.starttls).
	StartTLS  StartTLSMode
	TLSConfig *tls.Config
	// ForwardClient is how the original client is passed to the backend
	// (backend.forward_client).
	ForwardClient HandOver
	// Timeouts: connecting, each command's reply, and the reply after the
	// end of the message.
	ConnectTimeout time.Duration
	CommandTimeout time.Duration
	DataTimeout    time.Duration
	// MaxIdle bounds the kept-alive connections; IdleTimeout is how long
	// one may wait unused before it is closed instead of reused.
	MaxIdle     int
	IdleTimeout time.Duration
	Logger      *slog.Logger
	// Metrics records delivery times and failures; nil records nothing.
	Metrics *metrics.Metrics
}

// Forwarder delivers accepted messages to the backend over a pool of
// kept-alive connections, one transaction at a time on each.
type Forwarder struct {
	opts BackendOptions
	// utf8 is what the backend's last EHLO said of SMTPUTF8: 0 not yet
	// known, 1 offered, 2 not offered.
	utf8 atomic.Int32

	mu     sync.Mutex
	idle   []*bconn
	closed bool
}

// NewForwarder returns a forwarder for opts. Like Options, BackendOptions
// has no defaults for its modes and timeouts: the caller passes them
// (cmd/mxguard from the configuration's backend section, whose defaults
// are in config.Default), and NewForwarder panics on one left unset,
// since a zero timeout would let a silent backend hold a delivery forever.
func NewForwarder(opts BackendOptions) *Forwarder {
	if opts.Network == "" {
		opts.Network = "tcp"
	}
	if opts.Helo == "" {
		opts.Helo = opts.Hostname
	}
	var unset []string
	for _, f := range []struct {
		name string
		ok   bool
	}{
		{name: "StartTLS", ok: slices.Contains(opts.StartTLS.EnumValues(), string(opts.StartTLS))},
		{name: "ForwardClient", ok: slices.Contains(opts.ForwardClient.EnumValues(), string(opts.ForwardClient))},
		{name: "ConnectTimeout", ok: opts.ConnectTimeout > 0},
		{name: "CommandTimeout", ok: opts.CommandTimeout > 0},
		{name: "DataTimeout", ok: opts.DataTimeout > 0},
		{name: "IdleTimeout", ok: opts.IdleTimeout > 0},
	} {
		if !f.ok {
			unset = append(unset, f.name)
		}
	}
	if len(unset) > 0 {
		panic("proxy: BackendOptions without " + strings.Join(unset, ", ") + " (build them from the configuration; see config.Default)")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Forwarder{opts: opts}
}

// take returns a pooled connection, or nil when none is fresh enough.
func (f *Forwarder) take() *bconn {
	f.mu.Lock()
	defer f.mu.Unlock()
	for len(f.idle) > 0 {
		b := f.idle[len(f.idle)-1]
		f.idle = f.idle[:len(f.idle)-1]
		if time.Since(b.lastUsed) < f.opts.IdleTimeout {
			return b
		}
		b.close()
	}
	return nil
}

func (f *Forwarder) put(b *bconn) {
	b.lastUsed = time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed || len(f.idle) >= f.opts.MaxIdle {
		b.close()
		return
	}
	f.idle = append(f.idle, b)
}

// Close closes the kept-alive connections.
func (f *Forwarder) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for _, b := range f.idle {
		_, _ = b.cmd(time.Second, "QUIT")
		b.close()
	}
	f.idle = nil
}

// RefusesSMTPUTF8 reports whether the backend is known not to take
// SMTPUTF8 mail: its last EHLO did not offer the extension (RFC 6531).
func (f *Forwarder) RefusesSMTPUTF8() bool { return f.utf8.Load() == 2 }

// Ping checks that the backend accepts a connection and greets.
func (f *Forwarder) Ping(ctx context.Context) error {
	b, err := f.dial(ctx)
	if err != nil {
		return err
	}
	f.put(b)
	return nil
}

// Deliver sends msg to the backend for tx's recipients and returns the
// reply for the client. Only a 250 from the backend for this message gives
// a 250; a connection failure at any point gives 451, so the client
// retries, and so does a reply that does not answer the command it was
// read for: the connection is out of step and is closed.
// msg is tx.Content: the header section is the one tx.HeaderSplit found,
// which every check read.
func (f *Forwarder) Deliver(ctx context.Context, tx *policy.Transaction, msg *Message) Delivery {
	start := time.Now()
	d, kind := f.deliver(ctx, tx, msg.Size(), func(w io.Writer) error {
		return renderMessage(w, f.opts.Hostname, tx, msg, time.Now())
	})
	f.opts.Metrics.Backend(time.Since(start), kind)
	return d
}

// deliver sends what render writes (size octets, about, for SIZE) to the
// backend with tx's envelope, and returns the delivery with the kind of
// failure for the metrics ("" when the backend took the message). render
// is called at most once, when the backend is ready for the content.
func (f *Forwarder) deliver(ctx context.Context, tx *policy.Transaction, size int64, render func(io.Writer) error) (Delivery, string) {
	log := txLogger{f.opts.Logger, []any{"session", tx.Session, "tx", tx.ID}}
	for {
		b := f.take()
		reused := b != nil
		if !reused {
			var err error
			if b, err = f.dial(ctx); err != nil {
				log.Warn("backend unavailable", "err", err)
				return Delivery{Reply: replyBackendUnavailable.WithSession(tx.Session), Backend: err.Error()}, "unavailable"
			}
		}
		rep, committed, err := f.transact(b, reused, tx, size, render)
		if err != nil {
			b.close()
			var dr deliveryError
			if errors.As(err, &dr) {
				log.Warn("backend refused", "err", err)
				return dr.Delivery, "refused"
			}
			if reused && !committed {
				// A kept connection the backend had closed, or one it
				// spoke on unasked while idle: nothing of this message
				// reached it, so a fresh one may carry it.
				if errors.Is(err, errOutOfStep) {
					log.Warn("kept backend connection out of step, retrying on a fresh one", "err", err)
				} else {
					log.Debug("kept backend connection was dead, retrying", "err", err)
				}
				continue
			}
			log.Warn("backend delivery failed", "err", err)
			return Delivery{Reply: replyBackendFailed.WithSession(tx.Session), Backend: err.Error()}, "connection"
		}
		if b.spent {
			// After XCLIENT the backend treats this connection as the
			// client we named, who is not authorised for XCLIENT: Postfix
			// stops offering it. The connection has served its one
			// transaction.
			_, _ = b.cmd(f.opts.CommandTimeout, "QUIT")
			b.close()
			return rep, failureKind(rep)
		}
		f.put(b)
		return rep, failureKind(rep)
	}
}

// txLogger logs about one transaction. It is used per message, so the
// transaction's attributes are added only to lines that are logged, not
// formatted up front as slog.Logger.With would.
type txLogger struct {
	l     *slog.Logger
	attrs []any
}

func (t txLogger) log(level slog.Level, msg string, args ...any) {
	ctx := context.Background()
	if t.l.Enabled(ctx, level) {
		t.l.Log(ctx, level, msg, append(t.attrs[:len(t.attrs):len(t.attrs)], args...)...)
	}
}

// Debug logs at debug level.
func (t txLogger) Debug(msg string, args ...any) { t.log(slog.LevelDebug, msg, args...) }

// Info logs at info level.
func (t txLogger) Info(msg string, args ...any) { t.log(slog.LevelInfo, msg, args...) }

// Warn logs at warn level.
func (t txLogger) Warn(msg string, args ...any) { t.log(slog.LevelWarn, msg, args...) }

// Error logs at error level.
func (t txLogger) Error(msg string, args ...any) { t.log(slog.LevelError, msg, args...) }

// failureKind labels a delivery whose final reply is not 2xx (an LMTP
// partial delivery).
func failureKind(d Delivery) string {
	if d.Reply.Code/100 == 2 {
		return ""
	}
	return "refused"
}

// deliveryError is a refusal by the backend that is relayed to the client;
// the connection is still in step but the transaction is abandoned.
type deliveryError struct {
	Delivery
	err error
}

func (e deliveryError) Error() string { return e.err.Error() }

// transact runs one transaction on b. committed reports whether any of the
// message content may have reached the backend; before that, a failure of a
// kept connection can be retried on a fresh one.
func (f *Forwarder) transact(b *bconn, reused bool, tx *policy.Transaction, size int64, render func(io.Writer) error) (_ Delivery, committed bool, err error) {
	// RSET proves a kept connection is alive (RFC 5321 §4.1.1.5); with
	// PIPELINING it travels in the same packet as the envelope.
	var prefix []string
	if reused {
		prefix = append(prefix, "RSET")
	}
	mode, err := f.handOverMode(b)
	if err != nil {
		return Delivery{}, false, err
	}
	switch mode {
	case HandOverXClient:
		// Never a kept connection: XCLIENT spends it (see Deliver).
		if err := f.xclient(b, tx); err != nil {
			return Delivery{}, false, err
		}
	case HandOverXForward:
		prefix = append(prefix, xforwardCmd(b, tx))
	}
	mail := "MAIL FROM:<" + tx.MailFrom + ">"
	if _, ok := b.ext["SIZE"]; ok {
		mail += fmt.Sprintf(" SIZE=%d", size)
	}
	if _, ok := b.ext["8BITMIME"]; ok && tx.Body8Bit {
		mail += " BODY=8BITMIME"
	}
	if tx.SMTPUTF8 {
		if _, ok := b.ext["SMTPUTF8"]; !ok {
			// RFC 5321 §4.3.2: after DATA, 554 says "transaction failed";
			// 553 is not a reply to DATA. Later transactions are refused
			// at MAIL (RefusesSMTPUTF8).
			r := replyNoUTF8AfterData.WithSession(tx.Session)
			return Delivery{}, false, deliveryError{Delivery: Delivery{Reply: r}, err: errors.New("backend: no SMTPUTF8")}
		}
		mail += " SMTPUTF8"
	}
	// MAIL, every RCPT and DATA go in one write when the backend pipelines
	// (RFC 2920 §3.1 allows DATA last in a group), which saves a round trip
	// per message. Without PIPELINING, DATA waits for the recipients.
	_, pipelining := b.ext["PIPELINING"]
	cmds := append(append(prefix, mail), rcptCmds(tx.Rcpts)...)
	if pipelining {
		cmds = append(cmds, "DATA")
	}
	replies, err := b.exchange(cmds, pipelining)
	if err != nil {
		return Delivery{}, false, err
	}
	for i, r := range replies[:len(prefix)] {
		if r.Code != smtpreply.C250Completed {
			// A refused RSET or XFORWARD means the connection or the
			// backend's configuration is wrong, not the message.
			return Delivery{}, false, ioErr(verb(cmds[i]), fmt.Errorf("backend answers %s", r))
		}
	}
	replies = replies[len(prefix):]
	// Every reply must be one its command allows before any is acted on:
	// a reply read in the wrong place (a 250 where DATA's 354 belongs)
	// means every reply of the group may be someone else's.
	if err := checkGroup(replies, pipelining); err != nil {
		return Delivery{}, false, err
	}
	// Every error return below closes b (see deliver): when DATA was
	// pipelined and the backend answered 354 although a recipient failed,
	// closing before the final dot makes it discard the transaction
	// (RFC 5321 §4.1.1.4), so nothing is delivered to the recipients it took.
	var dataReply *smtpreply.Reply
	if pipelining {
		dataReply = &replies[len(replies)-1]
		replies = replies[:len(replies)-1]
	}
	if r := replies[0]; r.Code != smtpreply.C250Completed {
		return Delivery{}, false, deliveryError{Delivery: relay(tx, r), err: fmt.Errorf("backend: MAIL: %s", r)}
	}
	for i, r := range replies[1:] {
		if r.Code/100 != 2 {
			// Delivering to the recipients the backend took and not to
			// the others would leave the client unable to tell who got
			// it. Nothing is delivered; the client retries them all.
			enh := r.Enhanced
			if enh.IsZero() {
				enh = smtpreply.Se4Other00
			}
			enh[0] = 4
			rep := smtpreply.Reply{Code: smtpreply.C451LocalErr, Enhanced: enh,
				Text: fmt.Sprintf("backend refused recipient <%s>: %s", tx.Rcpts[i], r)}.WithSession(tx.Session)
			return Delivery{}, false, deliveryError{Delivery: Delivery{Reply: rep, Backend: r.String()}, err: fmt.Errorf("backend: RCPT <%s>: %s", tx.Rcpts[i], r)}
		}
	}
	if dataReply == nil {
		r, err := b.exchange([]string{"DATA"}, false)
		if err != nil {
			return Delivery{}, false, err
		}
		if err := answers("DATA", r[0], smtpreply.C354Continue); err != nil {
			return Delivery{}, false, err
		}
		dataReply = &r[0]
	}
	if r := *dataReply; r.Code != smtpreply.C354Continue {
		return Delivery{}, false, deliveryError{Delivery: relay(tx, r), err: fmt.Errorf("backend: DATA: %s", r)}
	}
	if err := f.writeMessage(b, render); err != nil {
		return Delivery{}, true, err
	}
	rep, err := f.finalReply(b, tx)
	return rep, true, err
}

func rcptCmds(rcpts []string) []string {
	out := make([]string, len(rcpts))
	for i, r := range rcpts {
		out[i] = "RCPT TO:<" + r + ">"
	}
	return out
}

// finalReply reads the reply to the end of the message: one for SMTP, one
// per recipient for LMTP (RFC 2033 §4.2).
func (f *Forwarder) finalReply(b *bconn, tx *policy.Transaction) (Delivery, error) {
	n := 1
	if f.opts.LMTP {
		n = len(tx.Rcpts)
	}
	var first, bad *smtpreply.Reply
	ok := 0
	for i := 0; i < n; i++ {
		r, err := b.read(f.opts.DataTimeout)
		if err == nil {
			// RFC 5321 §4.3.2: 250, or a refusal. A 354 or a 221 here
			// answers another command, and a 2xx that is not 250 is no
			// promise that the message is stored.
			err = answers("end of data", r, smtpreply.C250Completed)
		}
		if err != nil {
			return Delivery{}, err
		}
		if first == nil {
			first = &r
		}
		if r.Code == smtpreply.C250Completed {
			ok++
		} else if bad == nil {
			bad = &r
		}
	}
	// One reply per recipient for LMTP, one for SMTP, and nothing more: an
	// extra reply means one of those read may not be this message's.
	if err := b.inStep("end of data"); err != nil {
		return Delivery{}, err
	}
	switch {
	case ok == n:
		return relay(tx, *first), nil
	case ok == 0:
		return Delivery{}, deliveryError{Delivery: relay(tx, *bad), err: fmt.Errorf("backend: end of data: %s", bad)}
	}
	// Some recipients have it, some do not. A retry duplicates it for the
	// first ones; a 250 would lose it for the others. Duplicates win.
	rep := replyPartial(ok, n, tx.Session)
	f.opts.Logger.Warn("LMTP partial delivery, asking the client to retry", "session", tx.Session, "tx", tx.ID, "accepted", ok, "recipients", n, "refusal", bad.String())
	return Delivery{Reply: rep, Backend: bad.String()}, nil
}

// handOverMode decides how this connection passes the original client to
// the backend: HandOverXClient, HandOverXForward or HandOverNone.
func (f *Forwarder) handOverMode(b *bconn) (HandOver, error) {
	mode := f.opts.ForwardClient
	_, hasXC := b.ext["XCLIENT"]
	_, hasXF := b.ext["XFORWARD"]
	switch {
	case mode == HandOverAuto:
		// Only an extension that carries the address is worth a round
		// trip: the address is what the backend's own checks need.
		switch {
		case hasXC && offered(b.ext["XCLIENT"], "ADDR"):
			return HandOverXClient, nil
		case hasXF && offered(b.ext["XFORWARD"], "ADDR"):
			return HandOverXForward, nil
		}
		return HandOverNone, nil
	case mode == HandOverXClient && !hasXC, mode == HandOverXForward && !hasXF:
		return HandOverNone, ioErr("hand-over", fmt.Errorf("backend does not offer %s (check smtpd_authorized_%s_hosts)", strings.ToUpper(string(mode)), mode))
	case mode == HandOverXClient, mode == HandOverXForward:
		return mode, nil
	}
	return HandOverNone, nil
}

// clientAttrs are the XCLIENT/XFORWARD attributes for tx's client, in the
// form of Postfix's XCLIENT_README.
func clientAttrs(tx *policy.Transaction) [][2]string {
	c := tx.Client
	addr := c.Addr.Addr().Unmap()
	a := addr.String()
	if addr.Is6() {
		a = "IPV6:" + a
	}
	name := "[UNAVAILABLE]"
	if c.PTR != "" {
		name = c.PTR
	}
	helo := "[UNAVAILABLE]"
	if c.HELO != "" {
		// Never the client's bytes when they are not a name: the backend
		// records this as the client's HELO (XCLIENT_README).
		helo, _ = downstreamHELO(c)
	}
	proto := "SMTP"
	if c.ESMTP {
		proto = "ESMTP"
	}
	return [][2]string{{"NAME", name}, {"ADDR", a}, {"PORT", fmt.Sprint(c.Addr.Port())}, {"PROTO", proto}, {"HELO", helo}}
}

func offered(ext string, attr string) bool {
	for f := range strings.FieldsSeq(ext) {
		if strings.EqualFold(f, attr) {
			return true
		}
	}
	return false
}

// xclient sends XCLIENT; the backend then greets again and the session
// starts over with EHLO, as if the original client had connected.
func (f *Forwarder) xclient(b *bconn, tx *policy.Transaction) error {
	cmd := "XCLIENT"
	for _, kv := range clientAttrs(tx) {
		if offered(b.ext["XCLIENT"], kv[0]) {
			cmd += " " + kv[0] + "=" + xtext(kv[1])
		}
	}
	r, err := b.cmd(f.opts.CommandTimeout, "%s", cmd)
	if err != nil {
		return err
	}
	// Postfix greets again with 220; some implementations answer 250.
	// Either way the session restarts and needs EHLO.
	if r.Code != smtpreply.C220ServiceReady && r.Code != smtpreply.C250Completed {
		return ioErr("xclient", fmt.Errorf("backend answers XCLIENT with %s (check smtpd_authorized_xclient_hosts)", r))
	}
	if err := b.inStep("XCLIENT"); err != nil {
		return err
	}
	b.spent = true
	// XCLIENT_README: the session restarts, and the EHLO that follows
	// carries the original client's HELO name, as that client would.
	helo := f.opts.Helo
	if tx.Client.HELO != "" {
		helo, _ = downstreamHELO(tx.Client)
	}
	return b.hello(helo)
}

// xforwardCmd is the XFORWARD command for tx's client. XFORWARD holds for
// the next transaction only, so it is sent with each (XFORWARD_README).
func xforwardCmd(b *bconn, tx *policy.Transaction) string {
	var cmd strings.Builder
	cmd.Grow(128)
	cmd.WriteString("XFORWARD")
	ext := b.ext["XFORWARD"]
	attrs := append(clientAttrs(tx), [2]string{"IDENT", tx.ID}, [2]string{"SOURCE", "REMOTE"})
	for _, kv := range attrs {
		if offered(ext, kv[0]) {
			cmd.WriteString(" " + kv[0] + "=")
			cmd.WriteString(xtext(kv[1]))
		}
	}
	return cmd.String()
}

// renderMessage writes the message as the backend gets it, before
// dot-stuffing: our Received header, the headers of tag and quarantine
// verdicts, then the content without the header fields only mxguard may
// write (see forged). The content already has canonical CRLF line
// endings: the proxy made it so while receiving it. It is the one
// rendering of a message: the forwarder sends it, dot-stuffed, and the
// held-mail store keeps it, so that a released message is the one the
// backend would have received.
func renderMessage(w io.Writer, hostname string, tx *policy.Transaction, msg *Message, now time.Time) error {
	if _, err := io.WriteString(w, receivedHeader(hostname, tx, now)); err != nil {
		return err
	}
	// Headers from tag and quarantine verdicts go on top, beside ours.
	for _, h := range tx.Headers {
		if _, err := fmt.Fprintf(w, "%s: %s\r\n", h.Name, h.Value); err != nil {
			return err
		}
	}
	split, err := tx.HeaderSplit()
	if err != nil {
		return err
	}
	r, err := msg.Reader()
	if err != nil {
		return err
	}
	if _, err := io.CopyN(io.Discard, r, int64(split.Body)); err != nil {
		return fmt.Errorf("reading spool: %w", err)
	}
	return writeContent(w, tx.Header(), r, hostname)
}

// writeMessage sends what render writes, dot-stuffed (RFC 5321 §4.5.2),
// then the end-of-data line.
func (f *Forwarder) writeMessage(b *bconn, render func(io.Writer) error) error {
	b.setWriteDeadline(f.opts.DataTimeout)
	dw := &dotWriter{w: b.w, bol: true}
	if err := render(dw); err != nil {
		if dw.err != nil {
			return ioErr("write", err)
		}
		return fmt.Errorf("backend: reading the message: %w", err)
	}
	end := ".\r\n"
	if !dw.bol {
		end = "\r\n.\r\n"
	}
	// A reply before the end of data answers nothing we sent: read as the
	// final reply, it would be a 250 for content the backend has not
	// seen whole. Closing before the dot makes the backend drop the
	// transaction (RFC 5321 §4.1.1.4). The tail of the content may still
	// be buffered here: the backend cannot have answered it yet.
	if err := b.quiet("end of data"); err != nil {
		return err
	}
	if _, err := io.WriteString(b.w, end); err != nil {
		return ioErr("write", err)
	}
	if err := b.w.Flush(); err != nil {
		return ioErr("write", err)
	}
	return nil
}

// dotWriter doubles a dot at the start of every line.
type dotWriter struct {
	w   io.Writer
	bol bool
	err error
}

func (d *dotWriter) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if d.bol && p[n] == '.' {
			if _, d.err = d.w.Write([]byte{'.'}); d.err != nil {
				return n, d.err
			}
		}
		end := len(p)
		d.bol = false
		if i := bytes.IndexByte(p[n:], '\n'); i >= 0 {
			end, d.bol = n+i+1, true
		}
		if _, d.err = d.w.Write(p[n:end]); d.err != nil {
			return n, d.err
		}
		n = end
	}
	return n, nil
}
