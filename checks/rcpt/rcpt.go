// Package rcpt verifies that a recipient exists, by asking the backend
// mail server (an SMTP or LMTP probe that never sends DATA) or by looking
// it up in a recipients file, or both.
//
// Like every check, it reports evidence and never decides: it knows
// nothing of the client's SMTP session or of the rules that turn a Result
// into a reply. Protection against directory harvesting (counting unknown
// recipients per session) is the proxy's job, not this package's.
package rcpt

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"

	"mxguard/internal/confval"
	"mxguard/internal/state"
)

// Status is what a verification found out about a recipient.
type Status string

// The statuses a Verifier reports.
const (
	// Known means the recipient exists: the backend accepted RCPT TO, or
	// the recipients file lists it.
	Known Status = "known"
	// Unknown means the recipient does not exist: the backend refused RCPT
	// TO permanently (550, 551, 553, a 5.1.x enhanced code, or another 5xx,
	// which Detail then points out), or the recipients file does not list
	// it.
	Unknown Status = "unknown"
	// Temperror means the backend could not say: a 4xx reply (or 552, see
	// RFC 5321 §4.5.3.1.10), a timeout or a connection failure.
	Temperror Status = "temperror"
	// Unchecked means no verification method applies (verification is
	// off, or the address cannot be put in a RCPT command).
	Unchecked Status = "unchecked"
)

// Result is the evidence about one recipient.
type Result struct {
	Status Status
	// Detail says why, for the operator's log: the backend's reply
	// ("550 5.1.1 <x@example.org>: Recipient address rejected: User
	// unknown") or the file lookup ("not in /etc/mxguard/recipients.txt").
	// It is never meant for the SMTP client.
	Detail string
	// Cached is set when the answer came from the cache rather than from a
	// probe made for this call.
	Cached bool
}

// Options configures a Verifier. Zero values take the defaults in
// brackets.
type Options struct {
	// Verify is the method: "backend", "file", "both" (the file first; a
	// recipient the file lists is known, anything else is asked of the
	// backend) or "none" ["" means "none"].
	Verify Verify
	// File is the recipients file, needed by "file" and "both": one
	// address per line, "@example.org" for a catch-all that lists every
	// address at that domain, '#' to end-of-line for comments (at the
	// start of a line or after the address and white space), blank lines
	// ignored. Addresses, local parts included, match case-insensitively:
	// RFC 5321 §2.4 would allow a case-sensitive local part, but virtually
	// no mail system has one, and our default is to not reject "Alice@"
	// for a file that lists "alice@".
	File string
	// Backend is the backend's address, "host:port", or "unix:/path" for
	// a Unix socket; needed by "backend" and "both".
	Backend string
	// LMTP makes the probe speak LMTP (RFC 2033), saying LHLO.
	LMTP bool
	// Helo is the name given in EHLO or LHLO ["localhost"].
	Helo string
	// Timeout bounds connecting and each probe command [10s].
	Timeout time.Duration
	// PositiveTTL is how long a known answer is cached [1h].
	PositiveTTL time.Duration
	// NegativeTTL is how long an unknown answer is cached [5m]. Temperror
	// answers are never cached.
	NegativeTTL time.Duration
	// CacheSize is the number of entries in each of the two caches, one
	// for known and one for unknown answers [10000].
	CacheSize int
	// MaxIdle is the number of probe connections kept open between probes
	// [2]; negative keeps none.
	MaxIdle int
	// Store, when set, shares the backend's answers (under
	// rcpt:<lower-cased address>, for the same TTLs) with every instance
	// of a fleet and across a restart; the caches above are its front.
	// Nil keeps them in this process only.
	Store state.Store
}

// Defaults for Options.
const (
	DefaultHelo        = "localhost"
	DefaultTimeout     = 10 * time.Second
	DefaultPositiveTTL = time.Hour
	DefaultNegativeTTL = 5 * time.Minute
	DefaultCacheSize   = 10000
	DefaultMaxIdle     = 2
)

// Stats counts what a Verifier did since New.
type Stats struct {
	Probes    uint64 // probe attempts, a retry and a failed connect included
	Dials     uint64 // backend connections opened
	Hits      uint64 // backend answers served from this process's cache
	Misses    uint64 // backend lookups not in this process's cache, coalesced ones included
	Coalesced uint64 // misses that joined a lookup already in flight for the same address
	// Shared counts misses answered from Options.Store, StoreErrors the
	// store's failures (each a lookup probed, or an answer not shared).
	Shared      uint64
	StoreErrors uint64
}

// Verifier verifies recipients. It is safe for concurrent use.
//
// Backend answers are cached by lower-cased address in two expirable LRUs,
// one for known and one for unknown answers, rather than in one LRU with a
// lifetime per entry. expirable.LRU has one lifetime per cache, so two
// caches give the two lifetimes for free; more importantly, they keep a
// directory-harvest attack, which produces unknown answers by the
// thousand, from evicting the known answers of real recipients, so an
// attack does not turn into a probe per legitimate message. File answers
// are not cached: the compiled file is a map lookup already. With a state
// store (Options.Store) the two LRUs are the front of the store, which a
// fleet's instances share: a local miss asks the store (one round trip)
// before the backend, and a probe's answer is written to it.
type Verifier struct {
	o    Options
	file atomic.Pointer[recipientSet] // swapped by Reload
	pos  *expirable.LRU[string, cached]
	neg  *expirable.LRU[string, cached]
	pool *pool
	now  func() time.Time // the clock answers expire by; tests move it

	ctx    context.Context // probes run under it; Close cancels it
	cancel context.CancelFunc

	mu       sync.Mutex // guards inflight and closed, and orders probing.Go against Close
	inflight map[string]*call
	closed   bool
	probing  sync.WaitGroup

	probes, dials, hits, misses, coalesced, shared, storeErrors atomic.Uint64
}

// cached is an answer in the caches, with when it expires: an answer taken
// from the store expires when the probe that made it says, not a TTL after
// it reached this process.
type cached struct {
	res   Result
	until time.Time
}

// call is a probe in flight, shared by every caller asking about the same
// address meanwhile.
type call struct {
	done chan struct{}
	res  Result // set before done is closed
}

// New checks o, loads the recipients file if the method needs one, and
// returns a Verifier. A bad file line is reported as a *FileError,
// "FILE:LINE: message"; every bad line is reported, joined.
func New(o Options) (*Verifier, error) {
	if err := o.setDefaults(); err != nil {
		return nil, err
	}
	v := &Verifier{
		o:        o,
		inflight: make(map[string]*call),
		now:      time.Now,
	}
	if o.Verify == VerifyFile || o.Verify == VerifyBoth {
		set, err := loadFile(o.File)
		if err != nil {
			return nil, err
		}
		v.file.Store(set)
	}
	if o.Verify == VerifyBackend || o.Verify == VerifyBoth {
		network, address := "tcp", o.Backend
		if path, ok := strings.CutPrefix(o.Backend, "unix:"); ok {
			network, address = "unix", path
		}
		v.pool = &pool{o: &v.o, network: network, address: address}
		// expirable.NewLRU starts a cleanup goroutine that v2.0.7 cannot
		// stop; Close purges the entries, but the two goroutines remain.
		v.pos = expirable.NewLRU[string, cached](o.CacheSize, nil, o.PositiveTTL)
		v.neg = expirable.NewLRU[string, cached](o.CacheSize, nil, o.NegativeTTL)
	}
	v.ctx, v.cancel = context.WithCancel(context.Background())
	return v, nil
}

// setDefaults validates o and fills in the defaults.
func (o *Options) setDefaults() error {
	var errs []error
	switch o.Verify {
	case "":
		o.Verify = VerifyNone
	case VerifyNone, VerifyBackend, VerifyFile, VerifyBoth:
	default:
		errs = append(errs, fmt.Errorf("verify: expected %s, got %q", confval.OrList(o.Verify.EnumValues()), o.Verify))
	}
	if (o.Verify == VerifyFile || o.Verify == VerifyBoth) && o.File == "" {
		errs = append(errs, fmt.Errorf("verify: %s needs a recipients file", o.Verify))
	}
	if o.Verify == VerifyBackend || o.Verify == VerifyBoth {
		if err := checkBackend(o.Backend); err != nil {
			errs = append(errs, err)
		}
	}
	if o.Helo == "" {
		o.Helo = DefaultHelo
	} else if strings.ContainsFunc(o.Helo, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		errs = append(errs, fmt.Errorf("helo: white space or control character in %q", o.Helo))
	}
	durations := []struct {
		name string
		d    *time.Duration
		def  time.Duration
	}{
		{"timeout", &o.Timeout, DefaultTimeout},
		{"positive TTL", &o.PositiveTTL, DefaultPositiveTTL},
		{"negative TTL", &o.NegativeTTL, DefaultNegativeTTL},
	}
	for _, d := range durations {
		switch {
		case *d.d < 0:
			errs = append(errs, fmt.Errorf("%s: must not be negative, got %v", d.name, *d.d))
		case *d.d == 0:
			*d.d = d.def
		}
	}
	switch {
	case o.CacheSize < 0:
		errs = append(errs, fmt.Errorf("cache size: must not be negative, got %d", o.CacheSize))
	case o.CacheSize == 0:
		o.CacheSize = DefaultCacheSize
	}
	switch {
	case o.MaxIdle < 0:
		o.MaxIdle = 0
	case o.MaxIdle == 0:
		o.MaxIdle = DefaultMaxIdle
	}
	if len(errs) > 0 {
		return fmt.Errorf("rcpt: %w", errors.Join(errs...))
	}
	return nil
}

// checkBackend validates a backend address, "host:port" or "unix:/path".
func checkBackend(addr string) error {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		if path == "" {
			return errors.New(`backend: expected "unix:/path", got "unix:"`)
		}
		return nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || port == "" {
		return fmt.Errorf(`backend: expected "host:port" or "unix:/path", got %q`, addr)
	}
	return nil
}

// Cached answers what needs no backend: verification off, the
// recipients file, an address that cannot be asked about, or an answer
// in the cache. ok is false when only Verify, asking the backend, can
// answer. It never waits, so a caller may skip the deadline Verify needs.
func (v *Verifier) Cached(rcpt string) (res Result, ok bool) {
	return v.answer(context.Background(), rcpt)
}

// answer is Cached, with Verify's refusal to answer a caller whose ctx
// has ended.
func (v *Verifier) answer(ctx context.Context, rcpt string) (Result, bool) {
	if v == nil || v.o.Verify == VerifyNone {
		return Result{Status: Unchecked, Detail: "recipient verification is off"}, true
	}
	if set := v.file.Load(); set != nil {
		if entry, ok := set.lookup(rcpt); ok {
			return Result{Status: Known, Detail: fmt.Sprintf("%s lists %s", set.file, entry)}, true
		}
		if v.o.Verify == VerifyFile {
			return Result{Status: Unknown, Detail: "not in " + set.file}, true
		}
	}
	// go-smtp refuses to send a command line with CR or LF; angle brackets
	// would change what the backend is asked.
	if rcpt == "" || strings.ContainsAny(rcpt, "\r\n<>") {
		return Result{Status: Unchecked, Detail: fmt.Sprintf("cannot ask the backend about %q", clean(rcpt))}, true
	}
	if err := ctx.Err(); err != nil {
		return Result{Status: Temperror, Detail: "backend not asked: " + err.Error()}, true
	}
	if res, ok := v.lookup(strings.ToLower(rcpt)); ok {
		v.hits.Add(1)
		return res, true
	}
	return Result{}, false
}

// Verify reports what is known about rcpt, an address without angle
// brackets. It blocks for at most the time a probe takes, or until ctx
// ends (then the Result is Temperror; the probe goes on and its answer is
// cached for the next caller). A nil Verifier reports Unchecked.
func (v *Verifier) Verify(ctx context.Context, rcpt string) Result {
	if res, ok := v.answer(ctx, rcpt); ok {
		return res
	}
	key := strings.ToLower(rcpt)
	v.misses.Add(1)

	v.mu.Lock()
	if v.closed {
		v.mu.Unlock()
		return Result{Status: Temperror, Detail: "backend not asked: verifier closed"}
	}
	c, ok := v.inflight[key]
	if ok {
		v.coalesced.Add(1)
	} else {
		c = &call{done: make(chan struct{})}
		v.inflight[key] = c
		v.probing.Go(func() { v.run(key, rcpt, c) })
	}
	v.mu.Unlock()

	select {
	case <-c.done:
		return c.res
	case <-ctx.Done():
		return Result{Status: Temperror, Detail: "backend probe abandoned: " + ctx.Err().Error()}
	}
}

// lookup returns the answer for key in this process's caches.
func (v *Verifier) lookup(key string) (Result, bool) {
	now := v.now()
	for _, lru := range []*expirable.LRU[string, cached]{v.pos, v.neg} {
		if e, ok := lru.Get(key); ok {
			if !now.Before(e.until) {
				lru.Remove(key)
				continue
			}
			e.res.Cached = true
			return e.res, true
		}
	}
	return Result{}, false
}

// keep caches res for key until until; a temporary failure is not kept.
func (v *Verifier) keep(key string, res Result, until time.Time) {
	switch res.Status {
	case Known:
		v.pos.Add(key, cached{res: res, until: until})
		v.neg.Remove(key)
	case Unknown:
		v.neg.Add(key, cached{res: res, until: until})
		v.pos.Remove(key)
	}
}

// ttl is how long res is cached; 0 for an answer that is not.
func (v *Verifier) ttl(res Result) time.Duration {
	switch res.Status {
	case Known:
		return v.o.PositiveTTL
	case Unknown:
		return v.o.NegativeTTL
	}
	return 0
}

// run answers the callers waiting on c: from the store when another
// instance (or this one before a restart) has the answer, else by probing
// the backend, and caches the answer. The connection goes back to the pool
// before the callers are woken, so that a caller's next Verify finds it
// there rather than dialing; put never waits for the backend. A probe's
// answer is in the store before the callers are woken, so that once
// Verify has answered, every instance answers alike: one more round trip,
// to the store, after one to the backend.
func (v *Verifier) run(key, rcpt string, c *call) {
	res, until, ok := v.fetch(key)
	if !ok {
		var pc *probeConn
		res, pc = v.probe(v.ctx, rcpt)
		if pc != nil {
			v.pool.put(pc)
		}
		until = v.now().Add(v.ttl(res))
		if v.ttl(res) > 0 {
			v.share(key, res, until)
		}
	}
	v.keep(key, res, until)
	v.mu.Lock()
	delete(v.inflight, key)
	v.mu.Unlock()
	c.res = res
	close(c.done)
}

// Reload re-reads the recipients file, for SIGHUP. On error the file in
// use stays in use. Without a file method it does nothing.
func (v *Verifier) Reload() error {
	if v.o.Verify != VerifyFile && v.o.Verify != VerifyBoth {
		return nil
	}
	set, err := loadFile(v.o.File)
	if err != nil {
		return err
	}
	v.file.Store(set)
	return nil
}

// Stats returns the counters.
func (v *Verifier) Stats() Stats {
	return Stats{
		Probes:    v.probes.Load(),
		Dials:     v.dials.Load(),
		Hits:      v.hits.Load(),
		Misses:    v.misses.Load(),
		Coalesced: v.coalesced.Load(),

		Shared:      v.shared.Load(),
		StoreErrors: v.storeErrors.Load(),
	}
}

// Close aborts probes in flight, says QUIT on the kept connections and
// empties the caches. Verify after Close reports Temperror for anything
// the file does not answer.
func (v *Verifier) Close() error {
	v.mu.Lock()
	if v.closed {
		v.mu.Unlock()
		return nil
	}
	v.closed = true
	v.mu.Unlock()
	v.cancel()
	v.probing.Wait()
	if v.pool != nil {
		v.pool.close()
		v.pos.Purge()
		v.neg.Purge()
	}
	return nil
}
