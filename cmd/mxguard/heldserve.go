package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"path/filepath"
	"time"

	"mxguard/config"
	"mxguard/held"
	"mxguard/policy"
)

// heldDirError is a hold.dir that serve cannot use: a configuration
// problem (exit 2), named by its key.
type heldDirError struct{ err error }

func (e *heldDirError) Error() string { return "hold.dir: " + e.err.Error() }
func (e *heldDirError) Unwrap() error { return e.err }

// heldReplyTimeout bounds a release on the control socket: the delivery
// is bounded by the backend's own timeouts, which may add up to minutes.
const heldReplyTimeout = 30 * time.Minute

// openHeld opens the held-mail store of cfg for serve, which owns it:
// it cleans what a crash left and marks the releases it interrupted.
func openHeld(cfg *config.Config, log *slog.Logger) (*held.Store, error) {
	st, err := held.Open(held.Options{Dir: cfg.Hold.Dir, Keep: cfg.Hold.Keep.Duration, MaxBytes: int64(cfg.Hold.MaxBytes), Logger: log})
	if err != nil {
		return nil, &heldDirError{err}
	}
	return st, nil
}

// heldRecord is the verdict line of a release or deletion of m.
func heldRecord(m held.Meta, action, by, backendReply string) *policy.Record {
	rcpts := m.Rcpts
	if rcpts == nil {
		rcpts = []string{}
	}
	return &policy.Record{Time: time.Now().UTC(), Session: m.Session, Tx: m.Tx, ClientIP: m.Client.IP, ClientPTR: m.Client.PTR,
		HELO: m.Client.HELO, MailFrom: m.MailFrom, Rcpts: rcpts, MessageID: m.MessageID, Size: m.Size,
		Checks: map[string]policy.CheckRecord{}, Rules: []policy.RuleMatch{}, Score: m.Verdict.Score,
		Stage: policy.StageData.String(), Action: action, Reason: m.Verdict.Rule, BackendReply: backendReply,
		HeldID: m.ID, By: by}
}

// auditHeld writes the verdict line of a release or deletion, and a log
// line, which is the record when there is no verdict log.
func (in *instance) auditHeld(m held.Meta, action, by, backendReply string) {
	in.log.Info("held message "+action, "held_id", m.ID, "session", m.Session, "by", by, "backend_reply", backendReply)
	if vl := in.cur.Load().vlog; vl != nil {
		if err := vl.Write(heldRecord(m, action, by, backendReply)); err != nil {
			in.log.Error("cannot write verdict", "err", err, "held_id", m.ID)
		}
	}
}

// releaseHeld delivers the held message id to the current backend on
// behalf of by and records the release: the one way to release, for the
// control socket and the console alike.
func (in *instance) releaseHeld(ctx context.Context, id, by string, force bool) (held.Meta, error) {
	m, err := in.held.Release(ctx, id, by, force, in.cur.Load().fwd.Release)
	if err != nil {
		return m, err
	}
	in.auditHeld(m, policy.ActionRelease, by, m.LastAttempt().Reply)
	return m, nil
}

// deleteHeld deletes the held message id on behalf of by and records it.
func (in *instance) deleteHeld(id, by string) (held.Meta, error) {
	m, err := in.held.Delete(id)
	if err != nil {
		return m, err
	}
	in.auditHeld(m, policy.ActionDelete, by, "")
	return m, nil
}

// expireHeld deletes the held mail older than hold.keep.
func (in *instance) expireHeld() {
	gone, err := in.held.Expire()
	for _, m := range gone {
		in.auditHeld(m, policy.ActionDelete, "expiry", "")
	}
	if err != nil {
		in.log.Error("held: expiry", "err", err)
	}
}

// sweepHeld runs expiry until stop is closed: every hour, or more often
// when hold.keep is short, so that nothing outlives keep by much.
func (in *instance) sweepHeld(keep time.Duration, stop <-chan struct{}) {
	every := min(max(keep/24, time.Minute), time.Hour)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			in.expireHeld()
		}
	}
}

// heldReply is the control socket's answer about one held message.
type heldReply struct {
	Held  *held.Meta `json:"held,omitempty"`
	Error string     `json:"error,omitempty"`
	// Code tells the admin's command what happened: "released",
	// "refused" (the backend did not take it), "unknown" (the backend had
	// it all, its reply was lost), "deleted", or the error's
	// kind: "not-found", "released-already", "possibly-delivered", "busy",
	// "failed".
	Code string `json:"code"`
}

func heldErrorCode(err error) (string, int) {
	switch {
	case errors.Is(err, held.ErrNotFound):
		return "not-found", http.StatusNotFound
	case errors.Is(err, held.ErrReleased):
		return "released-already", http.StatusConflict
	case errors.Is(err, held.ErrPossiblyDelivered):
		return "possibly-delivered", http.StatusConflict
	case errors.Is(err, held.ErrBusy):
		return "busy", http.StatusConflict
	}
	return "failed", http.StatusInternalServerError
}

// serveHeldControl serves the admin's release and delete requests on
// hold.dir/control.sock (mode 0600: it releases mail). Release goes
// through the server because the server owns the forwarder (the backend's
// settings, TLS, XCLIENT) and the verdict log.
func (in *instance) serveHeldControl(dir string) (*http.Server, error) {
	path := filepath.Join(dir, controlSocket)
	l, err := listenControl(path)
	if err != nil {
		return nil, &heldDirError{err}
	}
	write := func(w http.ResponseWriter, status int, r heldReply) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(r)
	}
	fail := func(w http.ResponseWriter, m held.Meta, err error) {
		code, status := heldErrorCode(err)
		r := heldReply{Error: err.Error(), Code: code}
		if m.ID != "" {
			r.Held = &m
		}
		write(w, status, r)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/held/release", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		id, by, force := q.Get("id"), q.Get("by"), q.Get("force") == "1"
		// The delivery goes on if the admin's command goes away: its
		// outcome must be recorded either way.
		m, err := in.releaseHeld(context.WithoutCancel(r.Context()), id, by, force)
		if err != nil {
			fail(w, m, err)
			return
		}
		code := "released"
		switch a := m.LastAttempt(); {
		case m.State == held.StatePossiblyDelivered:
			code = "unknown"
		case !a.Delivered:
			code = "refused"
		}
		write(w, http.StatusOK, heldReply{Held: &m, Code: code})
	})
	mux.HandleFunc("POST /v1/held/delete", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		m, err := in.deleteHeld(q.Get("id"), q.Get("by"))
		if err != nil {
			fail(w, m, err)
			return
		}
		write(w, http.StatusOK, heldReply{Held: &m, Code: "deleted"})
	})
	srv := &http.Server{Handler: mux, ReadTimeout: 5 * time.Second, WriteTimeout: heldReplyTimeout, MaxHeaderBytes: 16 << 10}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			in.log.Warn("held: control socket failed", "path", path, "err", err)
		}
	}()
	return srv, nil
}
