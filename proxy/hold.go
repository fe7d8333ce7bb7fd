package proxy

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"time"

	"mxguard/held"
	"mxguard/internal/smtpreply"
	"mxguard/policy"
)

// The replies to a message a rule holds. RFC 5321 §4.2.5: the 250 may
// come only once the message is stored safely, and a store that cannot
// take it asks the client to retry (451, a local problem: RFC 3463's
// 4.3.0).
var (
	replyHeld       = smtpreply.Reply{Code: smtpreply.C250Completed, Enhanced: smtpreply.Se2Other00, Text: "Ok: held"}
	replyHoldFailed = smtpreply.Reply{Code: smtpreply.C451LocalErr, Enhanced: smtpreply.Se4Sys3Other0,
		Text: "cannot hold the message now, try again later"}
)

// ReleaseHeader names the header a release puts on top of a held message,
// with its id: the backend (a Sieve script, a milter) can drop the second
// copy of a message whose release mxguard could not see end.
const ReleaseHeader = "X-Mxguard-Release-Id"

// hold keeps the message a rule held in the held-mail store and returns
// the reply and the verdict line's outcome. The client hears 250 only
// when the store has the message on disk; any failure, a full store
// included, is 451, so the sender retries and nothing is lost.
func (s *session) hold(tx *policy.Transaction, msg *Message, v policy.Verdict, log txLogger) (smtpreply.Reply, policy.Outcome, func()) {
	o := policy.Outcome{Stage: policy.StageData, Action: v.Action.String(), Reason: v.Reason}
	var m held.Meta
	err := errors.New("no held-mail store")
	if s.opts.Hold != nil {
		m, err = s.opts.Hold.Hold(heldMeta(tx, v), func(w io.Writer) error {
			return renderMessage(w, s.opts.Hostname, tx, msg, time.Now())
		})
	}
	if err != nil {
		o.Action, o.Reason = policy.ActionTempfail.String(), "hold-store"
		return replyHoldFailed.WithSession(s.id), o, func() {
			log.Error("cannot hold the message", "rule", v.Reason, "err", err)
		}
	}
	o.HeldID = m.ID
	return replyHeld.WithSession(s.id), o, func() {
		log.Info("message held", "rule", v.Reason, "held_id", m.ID, "held_size", m.Size)
	}
}

// heldMeta describes tx and its verdict for the store: what a release
// needs (the envelope with the MAIL parameters that matter, the client
// for XCLIENT/XFORWARD) and what an admin reads.
func heldMeta(tx *policy.Transaction, v policy.Verdict) held.Meta {
	c := tx.Client
	var rules []string
	for _, m := range tx.Matches {
		rules = append(rules, m.Name)
	}
	return held.Meta{Session: tx.Session, Tx: tx.ID,
		Client: held.Client{IP: c.Addr.Addr().Unmap().String(), Port: int(c.Addr.Port()), HELO: c.HELO, PTR: c.PTR,
			ESMTP: c.ESMTP, TLS: c.TLS != nil},
		MailFrom: tx.MailFrom, SMTPUTF8: tx.SMTPUTF8, Body8Bit: tx.Body8Bit, Rcpts: append([]string(nil), tx.Rcpts...),
		MessageID: tx.MessageID, Size: tx.Size,
		Verdict: held.Verdict{Rule: v.Reason, Rules: rules, Score: tx.Score}}
}

// Release delivers a held message to the backend with its original
// envelope, the client it came from handed over as for any message
// (XCLIENT/XFORWARD), and ReleaseHeader on top of the content as it was
// held. It is a held.DeliverFunc.
func (f *Forwarder) Release(ctx context.Context, m held.Meta, content io.Reader) held.Result {
	ip, _ := netip.ParseAddr(m.Client.IP)
	tx := &policy.Transaction{Session: m.Session, ID: m.Tx,
		Client:   policy.Client{Addr: netip.AddrPortFrom(ip, uint16(m.Client.Port)), PTR: m.Client.PTR, HELO: m.Client.HELO, ESMTP: m.Client.ESMTP},
		MailFrom: m.MailFrom, Rcpts: m.Rcpts, SMTPUTF8: m.SMTPUTF8, Body8Bit: m.Body8Bit, Size: m.Size}
	hdr := ReleaseHeader + ": " + m.ID + "\r\n"
	start := time.Now()
	sent := false // the backend said 354: the content went out
	d, kind := f.deliver(ctx, tx, int64(len(hdr))+m.Size, func(w io.Writer) error {
		sent = true
		if _, err := io.WriteString(w, hdr); err != nil {
			return err
		}
		_, err := io.Copy(w, content)
		return err
	})
	f.opts.Metrics.Backend(time.Since(start), kind)
	reply := d.Backend
	if reply == "" {
		reply = d.Reply.String()
	}
	// A broken connection after the content went out (no reply to the
	// end of data, or one out of step) says nothing of whether the
	// backend took it: the same doubt as a crash during the release.
	return held.Result{Delivered: d.Reply.Code/100 == 2, Unknown: sent && kind == "connection", Reply: reply}
}
