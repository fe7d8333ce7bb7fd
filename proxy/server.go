// Package proxy speaks SMTP on the wire: it terminates inbound sessions,
// enforces limits and deadlines, asks the policy engine at every stage and
// forwards accepted messages to the backend.
//
// The front side is mxguard's own SMTP server rather than go-smtp's: the
// screening contracts need the raw bytes of every command and of DATA (bare
// LF, bare CR, every end-of-data variant, pipelining before the greeting),
// and go-smtp's server interprets those bytes before a session sees them.
package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"mxguard/held"
	"mxguard/internal/metrics"
	"mxguard/internal/smtpreply"
	"mxguard/internal/state"
	"mxguard/policy"
)

// Decider is the policy engine as the proxy sees it: each session gets its
// own view, which keeps the rules it started with across a reload.
type Decider interface {
	NewSession() *policy.Session
}

// Deliverer hands an accepted message to the backend.
type Deliverer interface {
	Deliver(ctx context.Context, tx *policy.Transaction, msg *Message) Delivery
}

// Delivery is the result of handing a message to the backend.
type Delivery struct {
	// Reply is what the client must get. A 2xx means the backend holds the
	// message.
	Reply smtpreply.Reply
	// Backend is the backend's own last reply, for the verdict log ("" when
	// it never answered).
	Backend string
}

// Options configures a Server. The limits have no defaults here: the
// caller passes every one (cmd/mxguard builds them from the configuration,
// whose config.Default is the one place a default is written, and the
// config key is named beside each field). NewServer panics on a limit left
// at zero, since zero would mean either no limit or no service, and
// neither is a safe thing to fall into by omission.
type Options struct {
	// Hostname is used in the banner, the EHLO reply and Received headers.
	Hostname string
	// MaxConnections bounds concurrent sessions (limits.max_connections).
	MaxConnections int
	// MaxConnectionsPerIP bounds concurrent sessions from one client
	// (limits.max_connections_per_ip).
	MaxConnectionsPerIP int
	// MaxMessageBytes is the largest message accepted, advertised with SIZE
	// (RFC 1870) (limits.max_message_bytes).
	MaxMessageBytes int64
	// MaxRecipients bounds recipients per transaction
	// (limits.max_recipients).
	MaxRecipients int
	// MaxErrors is how many protocol errors a session may make before it is
	// closed (limits.max_errors).
	MaxErrors int
	// MaxJunkCommands is how many commands that move nothing forward
	// (NOOP, RSET, VRFY, HELP) a session may send before each one counts
	// as an error, so that MaxErrors ends a session that only keeps itself
	// alive (limits.max_junk_commands). ETRN is not among them: it is not
	// implemented, so it is an error at once (502 5.5.1).
	MaxJunkCommands int
	// Exempt lists the clients the per-client rate limits and
	// MaxConnectionsPerIP do not apply to.
	Exempt []netip.Prefix
	// Postmaster is the address RCPT TO:<Postmaster> is forwarded to
	// (RFC 5321 §4.5.1: always accepted; backends may refuse the bare
	// form). "" forwards it as it came.
	Postmaster string
	// CommandTimeout bounds the wait for one command line
	// (limits.command_timeout).
	CommandTimeout time.Duration
	// DataTimeout bounds the transfer of a whole message
	// (limits.data_timeout).
	DataTimeout time.Duration
	// Rate limits connections, messages and recipients per client per
	// minute; a zero limit is off (limits.rate).
	Rate RateLimits
	// Metrics records connections; nil records nothing.
	Metrics *metrics.Metrics
	// GreetPause holds the banner back this long, so that a client that
	// talks first shows itself (smtp.pregreet); 0 is no pause.
	GreetPause time.Duration
	// Spool holds message content during a transaction; its Threshold
	// and Memory must be set (spool.memory_threshold, spool.memory_budget).
	Spool Spool
	// Policy decides at each stage; Backend delivers accepted messages.
	Policy  Decider
	Backend Deliverer
	// Hold keeps the messages a rule holds (hold.dir); nil answers them
	// 451, as a store that cannot take them would.
	Hold *held.Store
	// Logger gets the proxy's log lines; nil is slog.Default().
	Logger *slog.Logger
	// State is the store of what outlives a session (the rate limits'
	// buckets), shared by a fleet's instances with Redis; nil keeps it in
	// this process only.
	State state.Store
}

// complete checks that every limit is set, and points Logger at
// slog.Default() when it is nil.
func (o *Options) complete() {
	var unset []string
	for _, f := range []struct {
		name string
		ok   bool
	}{
		{name: "MaxConnections", ok: o.MaxConnections > 0},
		{name: "MaxConnectionsPerIP", ok: o.MaxConnectionsPerIP > 0},
		{name: "MaxMessageBytes", ok: o.MaxMessageBytes > 0},
		{name: "MaxRecipients", ok: o.MaxRecipients > 0},
		{name: "MaxErrors", ok: o.MaxErrors > 0},
		{name: "MaxJunkCommands", ok: o.MaxJunkCommands > 0},
		{name: "CommandTimeout", ok: o.CommandTimeout > 0},
		{name: "DataTimeout", ok: o.DataTimeout > 0},
		{name: "Spool.Threshold", ok: o.Spool.Threshold > 0},
		{name: "Spool.Memory", ok: o.Spool.Memory != nil},
		{name: "Rate.MaxTracked", ok: o.Rate.MaxTracked > 0 || !o.Rate.on()},
	} {
		if !f.ok {
			unset = append(unset, f.name)
		}
	}
	if len(unset) > 0 {
		panic("proxy: Options without " + strings.Join(unset, ", ") + " (build them from the configuration; see config.Default)")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Listener describes one listening socket's options.
type Listener struct {
	// TLS enables STARTTLS with this configuration when non-nil.
	TLS *tls.Config
	// TLSFunc, when set, replaces TLS: each new session asks it once for
	// its STARTTLS configuration (nil: no STARTTLS), so that a reload can
	// change the certificate, or turn STARTTLS on or off, without a new
	// listening socket.
	TLSFunc func() *tls.Config
}

// tlsConfig is the STARTTLS configuration of a new session.
func (lo Listener) tlsConfig() *tls.Config {
	if lo.TLSFunc != nil {
		return lo.TLSFunc()
	}
	return lo.TLS
}

// settings is what Reconfigure swaps as a whole: the options, and the rate
// limiter that enforces their Rate. A session keeps the settings it
// started with.
type settings struct {
	opts Options
	rate *rateLimiter
}

// Server accepts SMTP sessions on any number of listeners.
type Server struct {
	cur atomic.Pointer[settings]
	// rateHealth is the state store's health as the rate limits see it,
	// kept across reloads so that an episode is logged once.
	rateHealth storeHealth

	mu       sync.Mutex
	perIP    map[netip.Addr]int
	sessions map[*session]struct{}
	active   int
	lns      []net.Listener
	draining bool

	wg sync.WaitGroup
}

// NewServer returns a server with opts; Policy and Backend are required.
func NewServer(opts Options) *Server {
	opts.complete()
	s := &Server{
		perIP:    make(map[netip.Addr]int),
		sessions: make(map[*session]struct{}),
	}
	s.cur.Store(&settings{opts: opts, rate: s.newRateLimiter(&opts)})
	opts.Metrics.RateStoreErrors(s.rateHealth.errors.Load)
	return s
}

// newRateLimiter returns the limiter that enforces opts.Rate, in opts.State
// when there is one.
func (s *Server) newRateLimiter(opts *Options) *rateLimiter {
	r := newRateLimiter(opts.Rate, opts.Exempt, time.Now)
	if opts.State != nil {
		r.useStore(opts.State, &s.rateHealth, opts.Logger)
	}
	return r
}

// Reconfigure replaces the options, for a reload: sessions that start
// afterwards get opts, sessions in flight finish with the options they
// started with. What the rate limits remember is kept when Rate, Exempt
// and State are unchanged, so that a reload does not hand every client a
// fresh burst; changed limits start afresh in this process (a store keeps
// its buckets: reloading one instance of a fleet resets nothing).
func (s *Server) Reconfigure(opts Options) {
	opts.complete()
	old := s.cur.Load()
	rate := old.rate
	if opts.Rate != old.opts.Rate || !slices.Equal(opts.Exempt, old.opts.Exempt) || opts.State != old.opts.State {
		rate = s.newRateLimiter(&opts)
	}
	s.cur.Store(&settings{opts: opts, rate: rate})
}

// opts returns the options new sessions get.
func (s *Server) opts() *Options { return &s.cur.Load().opts }

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("proxy: server closed")

// Serve accepts connections on l until Shutdown. A listener that carries the
// PROXY protocol must be wrapped before it gets here (see ProxyProtoListener).
func (s *Server) Serve(l net.Listener, lo Listener) error {
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.lns = append(s.lns, l)
	s.mu.Unlock()

	var delay time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			draining := s.draining
			s.mu.Unlock()
			if draining {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, errTooManyFiles) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.opts().Logger.Warn("accept failed, retrying", "err", err, "delay", delay)
				time.Sleep(delay)
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return ErrServerClosed
			}
			// A connection that failed its PROXY header is that peer's
			// problem, not the listener's.
			if isProxyHeaderError(err) {
				s.opts().Logger.Warn("bad PROXY protocol header", "err", err)
				continue
			}
			return fmt.Errorf("proxy: accept: %w", err)
		}
		delay = 0
		// The session is counted under mu, where Shutdown sets draining
		// before it waits: an Add concurrent with that Wait is a race
		// (and a session Shutdown would not wait for). A connection
		// accepted as the drain began is closed: its listener is gone.
		s.mu.Lock()
		if s.draining {
			s.mu.Unlock()
			_ = c.Close()
			return ErrServerClosed
		}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.handle(c, lo)
		}()
	}
}

// admit counts a new connection against the limits of set, or returns the
// reason it is refused.
func (s *Server) admit(set *settings, ip netip.Addr) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.draining:
		return "shutting down"
	case s.active >= set.opts.MaxConnections:
		return "too many connections"
	case s.perIP[ip] >= set.opts.MaxConnectionsPerIP && !set.rate.exempted(ip):
		return "too many connections from your address"
	}
	s.active++
	s.perIP[ip]++
	return ""
}

func (s *Server) release(ip netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.active--
	if s.perIP[ip]--; s.perIP[ip] <= 0 {
		delete(s.perIP, ip)
	}
}

// handle runs one connection. Like session.serve, it keeps its own frame
// small (admission is in open): an idle session waits on top of it.
func (s *Server) handle(c net.Conn, lo Listener) {
	defer c.Close()
	sess := s.open(c, lo)
	if sess == nil {
		return
	}
	defer s.closed(sess)
	sess.serve()
}

// open admits a connection and returns its session, or refuses it and
// returns nil.
func (s *Server) open(c net.Conn, lo Listener) *session {
	// One snapshot for the whole session: a reload in the middle of it
	// changes nothing it sees.
	set := s.cur.Load()
	// RemoteAddr reads the PROXY header when there is one: the address it
	// carries is the client's, for limits, checks and logs alike.
	if proxyHeaderMissing(c) {
		set.opts.Logger.Warn("connection without a valid PROXY header closed", "peer", c.RemoteAddr())
		return nil
	}
	ap := addrPort(c.RemoteAddr())
	if !ap.IsValid() {
		return nil
	}
	ip := ap.Addr().Unmap()
	reason := s.admit(set, ip)
	var lease rateLease
	if reason == "" {
		// No session yet: the store's own deadline bounds the wait.
		if ok, key := set.rate.allowConn(context.Background(), ip, &lease); !ok {
			s.release(ip)
			reason = "too many connections per minute from " + key
		}
	}
	if reason != "" {
		// 421 closes the session (RFC 5321 §3.8); 4.7.0 says the refusal is
		// policy, so the sender retries later.
		_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_, _ = c.Write(smtpreply.Reply{Code: smtpreply.C421ServiceUnavail, Enhanced: smtpreply.Se4Pol7Other0,
			Text: set.opts.Hostname + " " + reason + ", try again later"}.Append(nil))
		set.opts.Logger.Info("connection refused", "client", ip, "reason", reason)
		set.opts.Metrics.ConnRefused(metricReason(reason))
		return nil
	}
	set.opts.Metrics.ConnOpened()
	sess := newSession(s, set, c, lo, netip.AddrPortFrom(ip, ap.Port()))
	sess.lease = lease
	s.mu.Lock()
	s.sessions[sess] = struct{}{}
	s.mu.Unlock()
	return sess
}

// closed ends a session that open admitted: the undoing of open, in the
// reverse order, even if the session panicked.
func (s *Server) closed(sess *session) {
	defer s.release(sess.client.Addr.Addr())
	defer sess.opts.Metrics.ConnClosed()
	defer func() {
		s.mu.Lock()
		delete(s.sessions, sess)
		s.mu.Unlock()
	}()
	sess.close()
}

// Shutdown stops accepting, lets sessions in flight finish their
// transactions until ctx is done, then closes the rest with 421. Sessions
// idle between transactions are told 421 at once: their client can retry
// elsewhere, and nothing they sent is lost.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.draining = true
	for _, l := range s.lns {
		_ = l.Close()
	}
	for sess := range s.sessions {
		sess.drain(false)
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	for sess := range s.sessions {
		sess.drain(true)
	}
	s.mu.Unlock()
	<-done
	return ctx.Err()
}

// Active returns the number of sessions in progress.
func (s *Server) Active() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active
}

// metricReason turns a refusal's text into a short metric label.
func metricReason(reason string) string {
	switch {
	case strings.HasPrefix(reason, "too many connections per minute"):
		return "rate"
	case reason == "too many connections from your address":
		return "per_ip_limit"
	case reason == "too many connections":
		return "limit"
	case reason == "shutting down":
		return "draining"
	}
	return "other"
}

func addrPort(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.AddrPort()
	case nil:
		return netip.AddrPort{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.AddrPort{}
	}
	return ap
}
