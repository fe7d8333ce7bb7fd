package policy

import (
	"context"
	"io"

	"mxguard/checks/check"
	"mxguard/checks/dmarc"
)

// FromFacts describe the RFC5322.From header.
type FromFacts struct {
	Domain string `expr:"domain" json:"domain" doc:"the domain of the one From address (\"\" when there is not exactly one)"`
	Local  bool   `expr:"local" json:"local" doc:"the From domain is one of ours (config domains): mail claiming to be from us"`
}

// fromFacts fills in the From facts from the header, for the data stage.
func (s *Session) fromFacts(tx *Transaction) {
	if tx.from != nil {
		return
	}
	// Parsed once here, before the data-stage checks start, for the
	// header checks and DMARC too.
	tx.from = dmarc.ParseFrom(tx.Header())
	if tx.from.Err != nil {
		return
	}
	d := tx.from.Domain
	tx.fromFacts = FromFacts{Domain: d, Local: s.LocalDomain(d)}
}

// DataTap returns a writer to copy the message to while it arrives, for
// the data-stage checks that start work before the transfer ends (DKIM
// looks its keys up); nil when no such check will run. Finish stops them.
func (s *Session) DataTap(ctx context.Context, tx *Transaction) io.Writer {
	var ws []io.Writer
	for _, c := range s.st.plan[StageData] {
		if c.Tap == nil {
			continue
		}
		if tx.taps == nil {
			tx.taps = map[string]check.Tap{}
		}
		t := c.Tap(ctx)
		tx.taps[c.name] = t
		ws = append(ws, t)
	}
	switch len(ws) {
	case 0:
		return nil
	case 1:
		return ws[0]
	}
	return io.MultiWriter(ws...)
}

// stopTaps stops tx's taps.
func (tx *Transaction) stopTaps() {
	for name, t := range tx.taps {
		t.Stop()
		delete(tx.taps, name)
	}
}
