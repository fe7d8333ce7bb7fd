package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/netip"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// session is a logged-in admin.
type session struct {
	user string
	// csrf is the token every change (a POST) must carry in its form: a
	// page of another origin cannot read it, so it cannot forge the
	// request even where a browser would send the cookie.
	csrf     string
	created  time.Time
	lastSeen time.Time
}

// Session lifetimes: an admin is logged out after sessionIdle without a
// request, and after sessionMax in any case.
const (
	sessionIdle = time.Hour
	sessionMax  = 12 * time.Hour
	// maxSessions bounds the sessions kept; the least recently used go
	// first. A login needs a password, so only admins make sessions.
	maxSessions = 1024
)

// sessions are the console's logged-in admins, kept in memory: a restart
// logs everyone out, which for an admin console is a fine trade against
// keeping session secrets on disk.
type sessions struct {
	now   func() time.Time
	cache *lru.Cache[string, *session]
}

func newSessions(now func() time.Time) *sessions {
	c, _ := lru.New[string, *session](maxSessions) // fails only for a size <= 0
	return &sessions{now: now, cache: c}
}

// token returns 32 random bytes, URL-safe base64.
func token() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// start makes a session for user and returns its id (the cookie's value).
func (s *sessions) start(user string) (string, *session) {
	now := s.now()
	id := token()
	ss := &session{user: user, csrf: token(), created: now, lastSeen: now}
	s.cache.Add(id, ss)
	return id, ss
}

// get returns the live session id names, touching it; nil when there is
// none or it has expired.
func (s *sessions) get(id string) *session {
	if id == "" {
		return nil
	}
	ss, ok := s.cache.Get(id)
	if !ok {
		return nil
	}
	now := s.now()
	if now.Sub(ss.lastSeen) > sessionIdle || now.Sub(ss.created) > sessionMax {
		s.cache.Remove(id)
		return nil
	}
	ss.lastSeen = now
	return ss
}

// end forgets the session id names.
func (s *sessions) end(id string) { s.cache.Remove(id) }

// sameToken compares two tokens in constant time.
func sameToken(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// Login limits: each client address, and each user name, may fail
// loginFailures times per loginWindow; then logins are refused until the
// window has passed since the first failure. Per name, so that a botnet
// guessing one admin's password from many addresses is stopped too (at
// the price that it can lock that admin out for loginWindow: the admin
// logs in from an allowed address after it, and the log names the
// attempts).
const (
	loginFailures = 5
	loginWindow   = 15 * time.Minute
	maxTracked    = 4096
)

// failures counts failed logins in a window.
type failures struct {
	n     int
	first time.Time
}

// loginLimiter refuses logins from a client address or for a user name
// that failed too often. Its memory is bounded: the least recently failed
// keys are forgotten first.
type loginLimiter struct {
	now   func() time.Time
	mu    sync.Mutex
	addrs *lru.Cache[netip.Addr, *failures]
	names *lru.Cache[string, *failures]
}

func newLoginLimiter(now func() time.Time) *loginLimiter {
	a, _ := lru.New[netip.Addr, *failures](maxTracked)
	n, _ := lru.New[string, *failures](maxTracked)
	return &loginLimiter{now: now, addrs: a, names: n}
}

// blocked reports whether a login from addr for name is refused.
func (l *loginLimiter) blocked(addr netip.Addr, name string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	over := func(f *failures, ok bool) bool {
		return ok && f.n >= loginFailures && now.Sub(f.first) < loginWindow
	}
	return over(l.addrs.Get(addr)) || over(l.names.Get(name))
}

// failed counts a failed login from addr for name.
func (l *loginLimiter) failed(addr netip.Addr, name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	count := func(f *failures, ok bool) *failures {
		if !ok || now.Sub(f.first) >= loginWindow {
			return &failures{n: 1, first: now}
		}
		f.n++
		return f
	}
	l.addrs.Add(addr, count(l.addrs.Get(addr)))
	l.names.Add(name, count(l.names.Get(name)))
}
