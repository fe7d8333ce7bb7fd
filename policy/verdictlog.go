package policy

import (
	"fmt"
	"os"
	"sync"
	"time"
)

// VerdictLog writes Records as JSON Lines to a file (or standard output).
// Each line goes out in one write to a file opened for appending, so lines
// from concurrent sessions never interleave. Reopen starts a new file under
// the same name, for log rotation (SIGUSR1).
type VerdictLog struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

// OpenVerdictLog opens path for appending; "-" is standard output.
func OpenVerdictLog(path string) (*VerdictLog, error) {
	l := &VerdictLog{path: path}
	if err := l.Reopen(); err != nil {
		return nil, err
	}
	return l, nil
}

// Reopen closes the current file and opens path anew.
func (l *VerdictLog) Reopen() error {
	if l.path == "-" {
		l.mu.Lock()
		l.f = os.Stdout
		l.mu.Unlock()
		return nil
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("verdict log: %w", err)
	}
	l.mu.Lock()
	old := l.f
	l.f = f
	l.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
	return nil
}

// The verdict line's encoder, appendRecord, is generated from Record's
// types: encoding/json's bytes without its reflection.
//go:generate go run -tags jsongen ../internal/genverdict -o record_json.go

// lineBufs recycles the buffers verdict lines are encoded into.
var lineBufs = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledLine bounds the buffers kept for reuse: one grown by an unusual
// line (hundreds of recipients) goes to the garbage collector.
const maxPooledLine = 64 << 10

// Write appends one record, as one line.
func (l *VerdictLog) Write(r *Record) error {
	bp := lineBufs.Get().(*[]byte)
	b, err := appendRecord((*bp)[:0], r)
	if err == nil {
		b = append(b, '\n')
		l.mu.Lock()
		_, err = l.f.Write(b)
		l.mu.Unlock()
	}
	if cap(b) <= maxPooledLine {
		*bp = b
		lineBufs.Put(bp)
	}
	if err != nil {
		return fmt.Errorf("verdict log: %w", err)
	}
	return nil
}

// Close closes the file.
func (l *VerdictLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil || l.f == os.Stdout {
		return nil
	}
	return l.f.Close()
}

// Outcome is how a transaction (or a refused connection) ended, as the
// proxy saw it.
type Outcome struct {
	Stage  Stage
	Action string // accept, reject, tempfail, quarantine, tag, hold, abandoned
	// Reason is what decided: a rule's name, "relay", "score", "size", …
	Reason       string
	Reply        string // the reply we sent for it
	BackendReply string
	// HeldID is the held-mail store's id for a held message.
	HeldID string
}

// Finish writes the verdict line for tx.
func (s *Session) Finish(tx *Transaction, o Outcome) {
	tx.stopTaps()
	s.e.metrics.Transaction(o.Action)
	if s.e.log == nil {
		return
	}
	rec := NewRecord(tx, o, time.Now())
	if err := s.e.log.Write(rec); err != nil {
		s.e.logger.Error("cannot write verdict", "err", err, "session", tx.Session)
	}
}

// NewRecord builds the verdict line for tx.
func NewRecord(tx *Transaction, o Outcome, now time.Time) *Record {
	f := tx.factsFor(o.Stage)
	f.Rcpt = AddressFacts{}
	checks := make(map[string]CheckRecord, len(tx.Checks)+len(tx.rcptChecks))
	for k, v := range tx.Checks {
		checks[k] = v
	}
	for k, v := range tx.rcptChecks {
		checks[k] = v
	}
	matches := tx.Matches
	if matches == nil {
		matches = []RuleMatch{}
	}
	rcpts := tx.Rcpts
	if rcpts == nil {
		rcpts = []string{}
	}
	return &Record{
		Time:         now.UTC(),
		Session:      tx.Session,
		Tx:           tx.ID,
		ClientIP:     f.Client.IP,
		ClientPTR:    tx.Client.PTR,
		HELO:         tx.Client.HELO,
		TLS:          tx.Client.TLS,
		MailFrom:     tx.MailFrom,
		Rcpts:        rcpts,
		Refused:      tx.Refused,
		MessageID:    tx.MessageID,
		Size:         tx.Size,
		Checks:       checks,
		Rules:        matches,
		Score:        tx.Score,
		Stage:        o.Stage.String(),
		Action:       o.Action,
		Reason:       o.Reason,
		Reply:        o.Reply,
		BackendReply: o.BackendReply,
		Facts:        f,
		HeldID:       o.HeldID,
	}
}
