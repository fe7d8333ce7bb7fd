package clamav

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"mxguard/checks/check"
)

// The check's result words, besides check.Temperror (no verdict: clamd
// could not be reached, did not answer in time, refused the stream or
// failed to scan it).
const (
	Infected = "infected"
	Clean    = "clean"
)

// Facts are the ClamAV check's facts, as rules read them. The result word
// (infected, clean, temperror) is checks.clamav.result; a scan that did not
// finish is in temperrors.
type Facts struct {
	Infected   bool     `expr:"infected" json:"infected" doc:"clamd found malware in the message (at any depth: MIME parts, archives, archives in archives)"`
	Signatures []string `expr:"signatures" json:"signatures" doc:"the names of the signatures clamd found, as it gives them (Win.Trojan.Agent-123, Eicar-Test-Signature)"`
}

// Define builds the ClamAV check: at data, when the section names clamd's
// address. It sends the message, as the backend receives it, to clamd
// once the transfer has ended, under Config.Timeout when set.
//
// It reads the message from View.Content (the spool) rather than from a
// Tap while it arrives: clamd scans only once the stream has ended, so a
// tap would save only a loopback copy, while it would hold one of clamd's
// threads for as long as the slowest client takes to send, and it would
// see the bytes as they came rather than the normalised message the
// backend gets.
func (Facts) Define(env check.Env) check.Def {
	d := check.Def{Stage: check.Data}
	c, ok := env.Section.(Config)
	if !ok || c.Address == "" {
		return d
	}
	d.Timeout = c.Timeout.Duration
	cl, err := NewClient(c.Address)
	if cl != nil {
		cl.Memory = env.Memory
	}
	if err != nil {
		// The loader validated the address (Config.Validate): this is a
		// build defect, and it must show, not pass every message.
		d.Run = func(context.Context, check.View) check.Result { return check.Errorf(check.Temperror, "%v", err) }
		return d
	}
	d.Run = func(ctx context.Context, v check.View) check.Result {
		r, err := v.Content()
		if err != nil {
			return check.Errorf(check.Temperror, "reading the message: %v", err)
		}
		start := time.Now()
		rep, err := cl.Scan(ctx, r)
		res := Result(rep, err)
		if dl, ok := ctx.Deadline(); ok && timedOut(err) {
			// What the engine says when it gives up first, with the
			// time the scan had.
			res.Detail = fmt.Sprintf("clamd %s: no answer within %s (clamav.timeout, else limits.check_timeout)",
				cl, dl.Sub(start).Round(10*time.Millisecond))
		}
		return res
	}
	return d
}

// Result is the check's result for a scan's answer.
func Result(rep Reply, err error) check.Result {
	if err != nil {
		detail := err.Error()
		if timedOut(err) {
			detail += " (no answer in time: see clamav.timeout)"
		}
		return check.Result{Result: check.Temperror, Detail: detail, Facts: Facts{}}
	}
	if rep.Infected {
		return check.Result{Result: Infected, Detail: "found " + strings.Join(rep.Signatures, ", "),
			Facts: Facts{Infected: true, Signatures: rep.Signatures}}
	}
	return check.Result{Result: Clean, Detail: "no signature found", Facts: Facts{}}
}

// timedOut reports an error of a scan that ran out of time: the context's
// deadline, or the connection's, which is the same.
func timedOut(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded)
}
