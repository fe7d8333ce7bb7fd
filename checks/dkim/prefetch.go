package dkim

import (
	"bufio"
	"bytes"
	"context"
	"strings"
	"sync"

	"mxguard/internal/mailhdr"
)

// Prefetcher watches a message's header section while the message arrives
// and, once the header is complete, looks up the keys its DKIM signatures
// name, so that Verify, run on the whole message once it is in the spool,
// finds them in the resolver's cache: the key lookups overlap the transfer
// while the body is neither copied nor held a second time. It also knows
// when a message is unsigned, so that Verify need not read it at all.
//
// Writes never fail and never wait; only the header section is kept, at
// most maxHeld octets of it, reserved from Options.Memory: when the budget
// has no room the Prefetcher gives up, and Verify does the lookups itself.
// A Prefetcher is used by one writer; Unsigned and Stop may be called from
// another goroutine.
type Prefetcher struct {
	ctx context.Context
	o   Options

	mu       sync.Mutex
	state    prefetchState
	head     []byte // the header section so far, while collecting
	held     int64  // what head holds of Options.Memory: its capacity
	hpos     int    // where the line being collected starts in head
	cancel   context.CancelFunc
	done     chan struct{} // closed when the lookups have ended; nil if none ran
	unsigned bool
}

type prefetchState int

const (
	collecting prefetchState = iota // reading the header section
	decided                         // the header is known; later input is ignored
	stopped                         // Stop was called
)

// maxHeld bounds the header section held; a longer one is left to Verify.
const maxHeld = 64 << 10

// NewPrefetcher returns a Prefetcher whose lookups end with ctx or Stop.
func NewPrefetcher(ctx context.Context, o Options) *Prefetcher {
	return &Prefetcher{ctx: ctx, o: o.withDefaults()}
}

// Write takes the next part of the message.
func (p *Prefetcher) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state != collecting {
		return len(b), nil
	}
	// The input so far; b itself while nothing is held, which spares a
	// copy when the header section ends within the first write. A header
	// section longer than maxHeld is not prefetched, so no more than
	// maxHeld octets are ever held or looked at.
	data := b
	if len(p.head) > 0 {
		take := b[:min(len(b), maxHeld-len(p.head))]
		if !p.hold(len(p.head) + len(take)) {
			p.giveUp()
			return len(b), nil
		}
		p.head = append(p.head, take...)
		data = p.head
	}
	split, ok := mailhdr.End(data, &p.hpos)
	switch {
	case ok:
		p.decide(data[:split.End])
		p.drop()
	case len(data) >= maxHeld:
		p.giveUp()
	case len(p.head) == 0:
		if !p.hold(len(b)) {
			p.giveUp()
			break
		}
		p.head = append(p.head, b...)
	}
	return len(b), nil
}

// hold makes room in head for n octets, reserving what it grows by from
// the memory budget; it reports false when the budget has no room. p.mu
// is held.
func (p *Prefetcher) hold(n int) bool {
	if n <= cap(p.head) {
		return true
	}
	size := min(max(n, 2*cap(p.head), 4<<10), maxHeld)
	if !p.o.Memory.Reserve(int64(size) - p.held) {
		return false
	}
	head := make([]byte, len(p.head), size)
	copy(head, p.head)
	p.head, p.held = head, int64(size)
	return true
}

// drop lets go of the header section held and gives its memory back.
// p.mu is held.
func (p *Prefetcher) drop() {
	p.o.Memory.Release(p.held)
	p.head, p.held = nil, 0
}

// giveUp leaves the message to Verify. p.mu is held.
func (p *Prefetcher) giveUp() {
	p.state = decided
	p.drop()
}

// decide looks at the complete header section. p.mu is held.
func (p *Prefetcher) decide(header []byte) {
	p.state = decided
	if !maySign(header) {
		p.unsigned = true
		return
	}
	fields, _ := readHeader(bufio.NewReader(bytes.NewReader(header)))
	var names []string
	for _, s := range signaturesOf(fields) {
		if len(names) == p.o.MaxSignatures {
			break
		}
		if name := s.Selector + "._domainkey." + s.Domain; keyName(s.Selector, s.Domain) && !contains(names, name) {
			names = append(names, name)
		}
	}
	if len(names) == 0 || p.o.Lookup == nil {
		return
	}
	ctx, cancel := context.WithCancel(p.ctx)
	p.cancel, p.done = cancel, make(chan struct{})
	look := p.o.Lookup
	go func() {
		defer close(p.done)
		defer cancel()
		// A panic in a lookup must not take the proxy down; Verify will
		// meet the same lookup and report it.
		defer func() {
			if r := recover(); r != nil {
				panics.Add(1)
			}
		}()
		for _, name := range names {
			_, _ = look(ctx, name) // the answer lands in the resolver's cache
		}
	}()
}

// keyName reports whether selector and domain make a name worth asking
// for; anything else is left for Verify to judge and report.
func keyName(selector, domain string) bool {
	ok := func(s string) bool {
		return s != "" && len(s) <= 253 && !strings.ContainsFunc(s, func(r rune) bool {
			return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '.' || r == '_')
		})
	}
	return ok(selector) && ok(domain)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Unsigned reports whether the header section arrived whole and cannot hold
// a DKIM-Signature field, so that Verify would find none: the caller may
// then take Result{Result: None} without reading the message.
func (p *Prefetcher) Unsigned() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.unsigned
}

// Stop ends the lookups still running and ignores further input. It does
// not wait for them.
func (p *Prefetcher) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.state = stopped
	p.drop()
	if p.cancel != nil {
		p.cancel()
	}
}

// wait waits for the lookups to end, for tests.
func (p *Prefetcher) wait() {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done != nil {
		<-done
	}
}

// maySign reports whether a header section may hold a DKIM-Signature
// field: it names one, in any case, or holds non-ASCII octets, where
// Unicode case folding (which go-msgauth's field matching uses, like
// ours) could make another spelling match.
func maySign(header []byte) bool {
	const name = "dkim-signature"
	for i, c := range header {
		if c >= 0x80 {
			return true
		}
		if (c == 'd' || c == 'D') && len(header)-i >= len(name) && asciiEqualFold(header[i:i+len(name)], name) {
			return true
		}
	}
	return false
}

func asciiEqualFold(b []byte, lower string) bool {
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
