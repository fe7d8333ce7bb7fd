package rspamd

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"mxguard/checks/check"
)

// Scanned is the check's result word when rspamd answered, whatever its
// action; besides it, check.Temperror (no verdict: rspamd could not be
// reached, did not answer in time, answered with an error status or with
// something that is not its reply).
const Scanned = "scanned"

// rspamd's actions (its actions section and the "action" of its reply):
// the score-based ones from the mildest, then the two a rule of rspamd's
// can force (its force_actions module).
const (
	NoAction       = "no action"
	Greylist       = "greylist"
	AddHeader      = "add header"
	RewriteSubject = "rewrite subject"
	SoftReject     = "soft reject"
	Reject         = "reject"
	Discard        = "discard"
	Quarantine     = "quarantine"
)

// Facts are the rspamd check's facts, as rules read them. The result word
// (scanned, temperror) is checks.rspamd.result; a scan that did not finish
// is in temperrors, and its facts are empty.
type Facts struct {
	Score    float64  `expr:"score" json:"score" doc:"rspamd's score for the message, rounded to hundredths (0 when it gave none)"`
	Required float64  `expr:"required" json:"required" doc:"the score at which rspamd rejects (its required_score: the reject action's)"`
	Action   string   `expr:"action" json:"action" doc:"the action rspamd chose for the message (\"\" when it did not answer)" values:"no action,greylist,add header,rewrite subject,soft reject,reject,discard,quarantine,\"\""`
	Symbols  []string `expr:"symbols" json:"symbols" doc:"the names of the symbols (rules) rspamd found, sorted; at most 100"`
}

// Define builds the rspamd check: at data, when the section names rspamd's
// URL. It sends the message, as the backend receives it, with the
// envelope, to rspamd once the transfer has ended, under Config.Timeout
// when set.
//
// Like the ClamAV check, it reads the message from View.Content (the
// spool) rather than a Tap: rspamd starts only once the request has
// ended, and it must see the normalised message the backend gets.
func (Facts) Define(env check.Env) check.Def {
	d := check.Def{Stage: check.Data}
	c, ok := env.Section.(Config)
	if !ok || c.URL == "" {
		return d
	}
	d.Timeout = c.Timeout.Duration
	cl, err := NewClient(c.URL)
	if err != nil {
		// The loader validated the URL (Config.Validate): this is a build
		// defect, and it must show, not pass every message.
		d.Run = func(context.Context, check.View) check.Result { return check.Errorf(check.Temperror, "%v", err) }
		return d
	}
	d.Run = func(ctx context.Context, v check.View) check.Result {
		r, err := v.Content()
		if err != nil {
			return check.Errorf(check.Temperror, "reading the message: %v", err)
		}
		start := time.Now()
		rep, err := cl.Check(ctx, EnvelopeOf(v), r)
		res := Result(rep, err)
		if dl, ok := ctx.Deadline(); ok && timedOut(err) {
			res.Detail = fmt.Sprintf("rspamd %s: no answer within %s (rspamd.timeout, else limits.check_timeout)",
				cl, dl.Sub(start).Round(10*time.Millisecond))
		}
		return res
	}
	return d
}

// EnvelopeOf is the envelope of the transaction v shows.
func EnvelopeOf(v check.View) Envelope {
	return Envelope{Client: v.Client(), HELO: v.HELO(), PTR: v.ClientPTR(), MailFrom: v.MailFrom(),
		Rcpts: v.Rcpts(), QueueID: v.TxID()}
}

// Result is the check's result for a scan's answer.
func Result(rep Reply, err error) check.Result {
	if err != nil {
		detail := err.Error()
		if timedOut(err) {
			detail += " (no answer in time: see rspamd.timeout)"
		}
		return check.Result{Result: check.Temperror, Detail: detail, Facts: Facts{}}
	}
	f := Facts{Score: round(rep.Score), Required: round(rep.Required), Action: rep.Action, Symbols: rep.Symbols}
	return check.Result{Result: Scanned, Detail: Detail(f), Facts: f}
}

// Detail says what rspamd answered, for people: its action, score and
// symbols.
func Detail(f Facts) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s, score %s / %s", f.Action, num(f.Score), num(f.Required))
	if len(f.Symbols) > 0 {
		b.WriteString(": " + strings.Join(f.Symbols, ", "))
	}
	return b.String()
}

// num writes a score as rules' replies do (fmt.Sprint): 15, 15.2.
func num(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }

// round keeps a score to hundredths, as rspamd shows it: its sums of
// floats (5.8999999) would otherwise reach replies and logs.
func round(x float64) float64 { return math.Round(x*100) / 100 }

// timedOut reports an error of a scan that ran out of time: the context's
// deadline, or the connection's, which is the same.
func timedOut(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded)
}
