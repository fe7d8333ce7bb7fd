package proxy

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"mxguard/internal/state"
)

// RateLimits configures the per-client limits; a zero field disables that limit.
type RateLimits struct {
	ConnectionsPerMinute int // new connections from one client
	MessagesPerMinute    int // MAIL transactions started by one client
	RecipientsPerMinute  int // recipients accepted for one client
	// Each limit applies twice: per client address, and per network
	// (IPv4 /24, IPv6 /64) with NetFactor times the limit
	// (limits.rate.net_factor), so a botnet spread over one /24 is
	// limited as a whole. A NetFactor of 0 or less disables the
	// per-network limits.
	NetFactor int
	// MaxTracked bounds the clients and networks remembered
	// (limits.rate.max_tracked); the least recently seen are forgotten
	// first. It must be set when any limit is on.
	MaxTracked int
}

// on reports whether any limit is on.
func (l RateLimits) on() bool {
	return l.ConnectionsPerMinute > 0 || l.MessagesPerMinute > 0 || l.RecipientsPerMinute > 0
}

// rateWindow is the period the limits are expressed in.
const rateWindow = time.Minute

// rateKind is the kind of event a limit counts.
type rateKind int

const (
	rateConn rateKind = iota // a new connection
	rateMsg                  // a MAIL transaction
	rateRcpt                 // an accepted recipient
	numRateKinds
)

// gcra is one limit, enforced with the Generic Cell Rate Algorithm: a token
// bucket of capacity N refilled at N per minute, kept as a single
// "theoretical arrival time" per key instead of a count and a timestamp.
// It is exact (a client idle for a minute has its whole burst back; after a
// full burst it gets one event per interval, half the burst after 30 s), it
// is O(1) with no timers, and it needs 8 bytes per key and kind.
type gcra struct {
	interval  time.Duration // rateWindow / N: the cost of one event; 0 disables
	tolerance time.Duration // rateWindow - interval: how far ahead of now the TAT may run
}

func newGCRA(perMinute int) gcra {
	if perMinute <= 0 {
		return gcra{}
	}
	iv := rateWindow / time.Duration(perMinute)
	if iv <= 0 { // absurd limits (over 6e10/min) still limit
		iv = 1
	}
	return gcra{interval: iv, tolerance: rateWindow - iv}
}

// conforms reports whether an event at now fits the bucket whose
// theoretical arrival time is tat.
func (g gcra) conforms(tat, now time.Duration) bool {
	return max(tat, now)-now <= g.tolerance
}

// admit charges an admitted event.
func (g gcra) admit(tat *time.Duration, now time.Duration) {
	*tat = max(*tat, now) + g.interval
}

// conformsN reports whether n events at now fit the bucket whose TAT is
// tat: a reservation of n is one event n intervals long.
func (g gcra) conformsN(tat, now time.Duration, n int) bool {
	return max(tat, now)-now <= g.tolerance-time.Duration(n-1)*g.interval
}

// admitN charges n admitted events.
func (g gcra) admitN(tat *time.Duration, now time.Duration, n int) {
	*tat = max(*tat, now) + time.Duration(n)*g.interval
}

// refuse charges a refused event. Refused events count, so that a client
// that keeps hammering while refused stays refused instead of getting a
// fresh slot every interval; the debt is capped at one window beyond the
// burst so that, once it stops, it is let back in within a minute (and the
// TAT cannot run away or overflow however long it hammers).
func (g gcra) refuse(tat *time.Duration, now time.Duration) {
	*tat = min(max(*tat, now)+g.interval, now+g.tolerance+rateWindow)
}

// rateState is what is remembered about one client address or network: the
// theoretical arrival time of each kind, as an offset from rateLimiter.epoch.
type rateState struct {
	tat [numRateKinds]time.Duration
	// keys are the store's keys of this address or network, by kind,
	// made on first use (with a store only).
	keys [numRateKinds]string
}

// rateLimiter enforces RateLimits. Its state is a fixed-size LRU cache so
// that its memory is bounded whatever the address space an attacker uses
// (an IPv6 /64 alone has 2^64 addresses): a client or network not seen for
// a while is forgotten, and so starts again with a full burst. Addresses and
// networks share the cache; a network is touched by each of its clients'
// events, so churning addresses within one network cannot evict the
// network's own state. It is safe for concurrent use.
type rateLimiter struct {
	addr, net [numRateKinds]gcra
	exempt    []netip.Prefix // clients no limit applies to
	now       func() time.Time
	// epoch makes times offsets from the limiter's creation: with time.Now
	// those come from the monotonic clock, so a stepped wall clock neither
	// locks clients out nor lets them in.
	epoch time.Time

	// mu makes each allow's read-check-update of the address's and the
	// network's state atomic, so concurrent events cannot overshoot a limit.
	// The cache has its own lock too, uncontended under mu; one mutex over
	// everything measured at well under a microsecond (see
	// BenchmarkRateAllow), far below the cost of an SMTP command.
	mu    sync.Mutex
	cache *lru.Cache[netip.Prefix, *rateState]

	// store, when set, holds the limits' buckets for every instance of a
	// fleet, and the cache above is its front (see ask).
	store  state.Store
	health *storeHealth
	log    *slog.Logger
}

// newRateLimiter returns a limiter for l reading the time from now
// (time.Now in production, a fake clock in tests).
func newRateLimiter(l RateLimits, exempt []netip.Prefix, now func() time.Time) *rateLimiter {
	factor := l.NetFactor
	// With every limit off nothing is remembered; Options.complete has
	// checked that a limit that is on comes with its bound.
	size := max(l.MaxTracked, 1)
	r := &rateLimiter{now: now, epoch: now(), exempt: exempt}
	for k, n := range [numRateKinds]int{
		rateConn: l.ConnectionsPerMinute,
		rateMsg:  l.MessagesPerMinute,
		rateRcpt: l.RecipientsPerMinute,
	} {
		r.addr[k] = newGCRA(n)
		if factor > 0 && n > 0 {
			r.net[k] = newGCRA(n * factor)
		}
	}
	// lru.New fails only for a size <= 0, ruled out above.
	r.cache, _ = lru.New[netip.Prefix, *rateState](size)
	return r
}

// rateKeys returns the cache keys for ip: the address itself (as a
// full-length prefix) and its /24 or /64. An invalid address (a client whose
// address is unknown) gets the zero prefix, shared by all such clients, and
// no network.
func rateKeys(ip netip.Addr) (addr, network netip.Prefix) {
	// An IPv4-mapped IPv6 address is the IPv4 client it maps (a dual-stack
	// listener reports IPv4 clients so), and zones are link-local noise.
	ip = ip.Unmap().WithZone("")
	bits := 64
	switch {
	case ip.Is4():
		bits = 24
	case !ip.Is6():
		return netip.Prefix{}, netip.Prefix{}
	}
	addr = netip.PrefixFrom(ip, ip.BitLen())
	network, _ = ip.Prefix(bits) // cannot fail: bits fits both families
	return addr, network
}

// rateKeyString formats a key for logs: "203.0.113.7", "203.0.113.0/24".
func rateKeyString(p netip.Prefix, isAddr bool) string {
	switch {
	case !p.IsValid():
		return "invalid"
	case isAddr:
		return p.Addr().String()
	}
	return p.String()
}

// state returns the state for key, creating it (and so maybe evicting the
// least recently seen key) when it is not tracked. Called with r.mu held.
func (r *rateLimiter) state(key netip.Prefix) *rateState {
	if s, ok := r.cache.Get(key); ok {
		return s
	}
	s := new(rateState)
	r.cache.Add(key, s)
	return s
}

// exempted reports whether ip is exempt from the per-client limits.
func (r *rateLimiter) exempted(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range r.exempt {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// allow counts one event of kind for ip and reports whether it is within
// the limits; when not, which key hit the limit ("203.0.113.7" or
// "203.0.113.0/24") for logs. A refused event counts against the client's
// address (see gcra.refuse) but not against its network, so that one
// hammering host's refused retries do not use up its neighbours' share.
//
// With a store, the in-process state is the front of the store's: an
// event it already refuses is refused without asking the store, and every
// other event is decided by the store, whose answer the front then records
// (see rateLimiter.ask). ctx bounds the wait for the store.
func (r *rateLimiter) allow(ctx context.Context, kind rateKind, ip netip.Addr) (ok bool, key string) {
	ok, key, _ = r.decide(ctx, kind, ip, nil)
	return ok, key
}

// rateReservation is a number of events of a kind reserved in the store
// ahead of their use (see state.Store.Allow's reserve).
type rateReservation struct {
	kind rateKind
	n    int
}

// decide is allow, and with a store it also asks the store, in the same
// round trip, to reserve the events of want for later use (all or none);
// granted says whether it did. Without a store nothing is reserved: the
// limiter is in this process and exact already.
func (r *rateLimiter) decide(ctx context.Context, kind rateKind, ip netip.Addr, want []rateReservation) (ok bool, key string, granted bool) {
	if kind < 0 || kind >= numRateKinds || r.addr[kind].interval == 0 || r.exempted(ip) {
		// An exempt client, or a limit that is off: what want names is
		// decided when it comes (its own limit may be on).
		return true, "", false
	}
	ak, nk := rateKeys(ip)
	checkNet := nk.IsValid() && r.net[kind].interval != 0
	now := r.now().Sub(r.epoch)

	r.mu.Lock()
	a := &r.state(ak).tat[kind]
	if !r.addr[kind].conforms(*a, now) {
		r.addr[kind].refuse(a, now)
		r.mu.Unlock()
		return false, rateKeyString(ak, true), false
	}
	if checkNet {
		// The address's state pointer stays valid even if this evicts its
		// entry (MaxTracked 1): the update is then merely forgotten.
		n := &r.state(nk).tat[kind]
		if !r.net[kind].conforms(*n, now) {
			r.addr[kind].refuse(a, now)
			r.mu.Unlock()
			return false, rateKeyString(nk, false), false
		}
		if r.store == nil {
			r.net[kind].admit(n, now)
		}
	}
	if r.store == nil {
		r.addr[kind].admit(a, now)
		r.mu.Unlock()
		return true, "", false
	}
	// Reserve only what the front does not already refuse: the store
	// would refuse it too.
	for _, w := range want {
		if w.kind < 0 || w.kind >= numRateKinds || r.addr[w.kind].interval == 0 || !r.frontConforms(w.kind, w.n, ak, nk, now) {
			want = nil
			break
		}
	}
	r.mu.Unlock()
	return r.ask(ctx, kind, want, ak, nk, checkNet)
}

// frontConforms reports whether the front admits n events of kind for
// the address ak and its network nk at now. Called with r.mu held.
func (r *rateLimiter) frontConforms(kind rateKind, n int, ak, nk netip.Prefix, now time.Duration) bool {
	if !r.addr[kind].conformsN(r.state(ak).tat[kind], now, n) {
		return false
	}
	return !nk.IsValid() || r.net[kind].interval == 0 || r.net[kind].conformsN(r.state(nk).tat[kind], now, n)
}
