// Package state keeps what outlives a transaction: the rate limits'
// buckets, the greylist, the recipient-verification cache and counters
// such as the unknown recipients a client tried. One interface, Store,
// has two kinds of store behind it: an embedded one for a single machine
// (the default, nothing to install) and Redis, shared by every instance
// of a fleet behind a load balancer.
//
// The operations are the ones mxguard needs, not a generic key-value
// API, so that each is one round trip and atomic in every store: a rate
// limit's read-check-update, a greylist lookup. Deciding and recording
// are apart: Greylist only reads, and RecordGreylist, which the engine
// calls in serve and never in check or replay, writes.
package state

import (
	"context"
	"errors"
	"time"
)

// Store is the state every instance of a site shares. Implementations are
// safe for concurrent use. An error means the store could not answer
// (Redis down, a full disk): callers treat it as a temporary failure,
// never as a verdict.
type Store interface {
	// Allow charges one event to a chain of rate-limit buckets (a
	// client's address, then its network): when the event conforms to
	// every bucket, each is charged and Allow returns -1; else it returns
	// the index of the first bucket that refused it, and only the first
	// bucket is charged, with a refusal (see Limit).
	//
	// reserve, when not empty, is a second chain charged in the same
	// step for an event still to come (a transaction's first recipient,
	// reserved with its MAIL): only when the first event is admitted and
	// the second conforms to every bucket of reserve, and never with a
	// refusal; reserved says whether it was. The caller then admits that
	// event without asking again, saving a round trip; a reservation it
	// does not use stays charged, so the limits err on the side of fewer
	// events, never more.
	Allow(ctx context.Context, chain, reserve []Limit) (refused int, reserved bool, err error)
	// Count adds n to the counter key and returns its new value. A
	// counter lives for window from its first event (a fixed window);
	// n = 0 reads it.
	Count(ctx context.Context, key string, n int64, window time.Duration) (int64, error)
	// Greylist says where triplet t stands. It reads only.
	Greylist(ctx context.Context, t Triplet) (Grey, error)
	// RecordGreylist records what Greylist answered for t: a new
	// triplet's first attempt, a network that has passed, or a known
	// network's pass refreshed (see PassRefresh).
	RecordGreylist(ctx context.Context, t Triplet, g Grey) error
	// Get and Put are a cache with expiry (recipient verification's
	// answers). Get's bool is false when key is absent or expired.
	Get(ctx context.Context, key string) ([]byte, bool, error)
	Put(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Entries calls fn for each live entry whose key starts with prefix,
	// until fn returns false; Delete removes one entry and reports
	// whether it was there. Both are for the admin (mxguard state).
	Entries(ctx context.Context, prefix string, fn func(Entry) bool) error
	Delete(ctx context.Context, key string) (bool, error)
	// Close releases the store; the embedded one writes what it holds.
	Close() error
}

// ErrClosed is returned by a store used after Close.
var ErrClosed = errors.New("state: store closed")

// Limit is one rate-limit bucket, enforced with the Generic Cell Rate
// Algorithm: a token bucket of Window/Interval events refilled at one per
// Interval, kept as one "theoretical arrival time" (TAT) per key.
type Limit struct {
	Key string
	// Interval is the cost of one event: the window divided by the
	// number of events it allows.
	Interval time.Duration
	// Window is the period the limit is expressed in (a minute).
	Window time.Duration
}

// tolerance is how far ahead of now a bucket's TAT may run.
func (l Limit) tolerance() time.Duration { return l.Window - l.Interval }

// Conforms reports whether an event at now fits a bucket whose TAT is tat.
func (l Limit) Conforms(tat, now time.Duration) bool {
	return max(tat, now)-now <= l.tolerance()
}

// Admit returns the TAT after an admitted event.
func (l Limit) Admit(tat, now time.Duration) time.Duration {
	return max(tat, now) + l.Interval
}

// Refuse returns the TAT after a refused event. Refused events count, so
// that a client that keeps hammering while refused stays refused instead
// of getting a fresh slot every interval; the debt is capped at one window
// beyond the burst so that, once it stops, it is let back in within a
// window (and the TAT cannot run away however long it hammers).
func (l Limit) Refuse(tat, now time.Duration) time.Duration {
	return min(max(tat, now)+l.Interval, now+l.tolerance()+l.Window)
}

// Expiry is how long a bucket with TAT tat must be kept at now: past its
// TAT it is the same as a bucket never seen.
func (l Limit) Expiry(tat, now time.Duration) time.Duration {
	return max(tat-now, 0) + time.Second
}

// Triplet is one greylisting triplet (the client's network, the envelope
// sender, the recipient), with the greylist's settings.
type Triplet struct {
	// Network is the client's network ("203.0.113.0/24", "2001:db8::/64"):
	// large senders retry from another address of a pool.
	Network string
	// Sender and Rcpt are normalised: per-message tags (SRS, BATV,
	// VERP) removed, lower case.
	Sender, Rcpt string
	// Delay is how long after its first attempt a triplet may pass.
	Delay time.Duration
	// RetryWindow is how long after Delay a triplet not retried is
	// remembered.
	RetryWindow time.Duration
	// PassLifetime is how long a network that passed is not greylisted
	// again.
	PassLifetime time.Duration
}

// Key is the triplet's key in the store.
func (t Triplet) Key() string { return "grey:t:" + t.Network + "|" + t.Sender + "|" + t.Rcpt }

// NetworkKey is the key that marks t's network as passed.
func (t Triplet) NetworkKey() string { return "grey:p:" + t.Network }

// GreyState is where a triplet stands.
type GreyState string

// The greylist states.
const (
	// GreyNew: never seen (or forgotten): it is delayed.
	GreyNew GreyState = "new"
	// GreyEarly: seen, but retried before Delay: still delayed.
	GreyEarly GreyState = "early"
	// GreyPassed: retried after Delay, within RetryWindow: it passes, and
	// so will its network.
	GreyPassed GreyState = "passed"
	// GreyKnown: the client's network passed within PassLifetime.
	GreyKnown GreyState = "known"
)

// PassRefresh is how old a network's pass must be before mail from the
// network refreshes it (RecordGreylist of a known answer): a regular
// sender stays known for as long as it sends, as with postgrey, and the
// usual answer for it stays one read, with a write at most once a day.
const PassRefresh = 24 * time.Hour

// Grey is Greylist's answer.
type Grey struct {
	State GreyState
	// Wait is how long until the triplet may pass (new, early).
	Wait time.Duration
	// Age is how long ago the triplet was first seen (early, passed), or
	// the network passed or was last refreshed (known).
	Age time.Duration
}

// StalePass reports whether g is a known network whose pass is due for a
// refresh (older than PassRefresh).
func (g Grey) StalePass() bool { return g.State == GreyKnown && g.Age >= PassRefresh }

// Marks are what a store holds about a triplet and its network.
type Marks struct {
	// Passed is set when the network passed (or was refreshed) at
	// PassedAt, within its pass lifetime.
	Passed   bool
	PassedAt time.Time
	// Seen is set when the triplet's first attempt, at First, is
	// remembered.
	Seen  bool
	First time.Time
}

// Decide is the greylist's rule, shared by every store: from the marks
// kept for t, where the triplet stands at now.
func Decide(t Triplet, m Marks, now time.Time) Grey {
	switch {
	case m.Passed:
		return Grey{State: GreyKnown, Age: max(now.Sub(m.PassedAt), 0)}
	case !m.Seen:
		return Grey{State: GreyNew, Wait: t.Delay}
	}
	age := max(now.Sub(m.First), 0)
	if age < t.Delay {
		return Grey{State: GreyEarly, Wait: t.Delay - age, Age: age}
	}
	return Grey{State: GreyPassed, Age: age}
}

// Entry is one entry as the admin sees it.
type Entry struct {
	Key string
	// Value is the entry's value for people: a count, a time, a TAT.
	Value string
	// TTL is how long the entry lives on (0: no expiry).
	TTL time.Duration
}
