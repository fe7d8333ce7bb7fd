package policy

import (
	"context"
	"strings"
)

// Options configures an Engine.
type Options struct {
	// Domains are the recipient domains this site accepts mail for. A
	// recipient anywhere else is refused whatever any rule says: mxguard is
	// never an open relay.
	Domains []string
}

// Engine decides, at each stage of a transaction, whether it goes on.
//
// Today it enforces the contracts that no rule may override (no relay,
// nothing ambiguous downstream). Checks and the rules engine plug in here;
// the proxy's side of the conversation does not change.
type Engine struct {
	domains map[string]struct{}
}

// NewEngine returns an engine for opts.
func NewEngine(opts Options) *Engine {
	e := &Engine{domains: make(map[string]struct{}, len(opts.Domains))}
	for _, d := range opts.Domains {
		e.domains[strings.ToLower(strings.TrimSuffix(d, "."))] = struct{}{}
	}
	return e
}

// Decide returns the verdict for tx at stage. It never blocks on the
// network today; ctx bounds the checks that later stages will run.
func (e *Engine) Decide(ctx context.Context, stage Stage, tx *Transaction) Verdict {
	switch stage {
	case StageRcpt:
		// RFC 5321 §4.5.1: <postmaster> without a domain must be accepted.
		if !e.LocalDomain(Domain(tx.Rcpt)) && !strings.EqualFold(tx.Rcpt, "postmaster") {
			// RFC 5321 §3.6.2 lets a server refuse to relay; 5.7.1 is
			// "delivery not authorized" (RFC 3463).
			return Refuse(ActionReject, "relay", 550, [3]int{5, 7, 1},
				"relay access denied: we do not accept mail for that domain", tx.Session)
		}
	case StageData:
		if p := tx.Protocol; p.Ambiguous() {
			return Refuse(ActionReject, protocolReason(p), 554, [3]int{5, 6, 0},
				"message refused: "+protocolReason(p)+" (only CRLF line endings and <CRLF>.<CRLF> are allowed)", tx.Session)
		}
	}
	return Accept
}

// LocalDomain reports whether mail for domain is ours to accept.
func (e *Engine) LocalDomain(domain string) bool {
	_, ok := e.domains[strings.ToLower(strings.TrimSuffix(domain, "."))]
	return ok
}

func protocolReason(p Protocol) string {
	switch {
	case p.BadTerminator:
		return "non-canonical end-of-data sequence"
	case p.BareLF:
		return "bare LF line ending"
	case p.BareCR:
		return "bare CR in message"
	default:
		return "NUL byte in message"
	}
}
