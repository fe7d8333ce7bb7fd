// Package dnstest is an in-process authoritative DNS server on loopback for
// tests and demos: it serves zone-file text over UDP and TCP on one port and
// can be told to fail, refuse, stay silent or go slow for chosen names.
//
// Its semantics are those of an authoritative server, enough for SPF, DKIM,
// DMARC and DNSBL tests: exact names, NXDOMAIN versus NODATA (with a SOA in
// the authority section), CNAMEs chased within its own data, RFC 4592
// wildcards, multi-string TXT records kept as they are, and truncation over
// UDP when an answer exceeds the client's EDNS0 size (512 bytes without), so
// that the TCP fallback of a client is exercised.
package dnstest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// ednsSize is the UDP payload size the server advertises in its OPT record.
const ednsSize = 1232

// behaviour is what the server does for one name instead of, or before,
// answering.
type behaviour struct {
	servFail, refuse, drop bool
	delay                  time.Duration
}

// Server is a running test DNS server. Its methods are safe for concurrent
// use, including while queries are being answered.
type Server struct {
	mu     sync.RWMutex
	zone   *zone
	behave map[string]behaviour // by lower-case FQDN

	queries atomic.Int64

	addr      string
	udp, tcp  *dns.Server
	closed    chan struct{} // closed by Close, to cut delays short
	closeOnce sync.Once
	closeErr  error
}

// New parses the zones (RFC 1035 master-file text; $ORIGIN and $TTL
// work, relative names without $ORIGIN are relative to the root) and starts
// a server on 127.0.0.1 on a free port, UDP and TCP.
func New(zones ...string) (*Server, error) {
	s := &Server{
		zone:   newZone(),
		behave: make(map[string]behaviour),
		closed: make(chan struct{}),
	}
	for _, z := range zones {
		if err := s.AddZone(z); err != nil {
			return nil, err
		}
	}
	if err := s.listen(); err != nil {
		return nil, err
	}
	return s, nil
}

// listen binds UDP and TCP on the same loopback port and starts serving.
func (s *Server) listen() error {
	var (
		pc  net.PacketConn
		l   net.Listener
		err error
	)
	// The UDP port the kernel picks may be taken for TCP; try a few.
	for range 20 {
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("dnstest: %w", err)
		}
		l, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			break
		}
		pc.Close()
	}
	if err != nil {
		return fmt.Errorf("dnstest: no port free for both UDP and TCP: %w", err)
	}
	s.addr = pc.LocalAddr().String()

	started := make(chan error, 4)
	s.udp = &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(s.serveUDP)}
	s.tcp = &dns.Server{Listener: l, Handler: dns.HandlerFunc(s.serveTCP)}
	for _, srv := range []*dns.Server{s.udp, s.tcp} {
		srv.NotifyStartedFunc = func() { started <- nil }
		go func() {
			if err := srv.ActivateAndServe(); err != nil {
				started <- err
			}
		}()
	}
	for range 2 {
		if err := <-started; err != nil {
			pc.Close()
			l.Close()
			return fmt.Errorf("dnstest: serve: %w", err)
		}
	}
	return nil
}

// Addr returns the server's address, "127.0.0.1:PORT", for UDP and TCP.
func (s *Server) Addr() string { return s.addr }

// AddZone adds the records of zone-file text.
func (s *Server) AddZone(text string) error {
	return s.addZone(text, "")
}

// addZone adds zone text, naming file in parse errors.
func (s *Server) addZone(text, file string) error {
	rrs, err := parseZone(text, file)
	if err != nil {
		return err
	}
	s.AddRR(rrs...)
	return nil
}

// AddRR adds parsed records.
func (s *Server) AddRR(rr ...dns.RR) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.zone.add(rr...)
}

// Reset drops all records and behaviours. The query count is kept.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.zone = newZone()
	s.behave = make(map[string]behaviour)
}

// ServFail makes the server answer SERVFAIL for name, whatever the type.
func (s *Server) ServFail(name string) {
	s.setBehaviour(name, func(b *behaviour) { b.servFail = true })
}

// Refuse makes the server answer REFUSED for name.
func (s *Server) Refuse(name string) {
	s.setBehaviour(name, func(b *behaviour) { b.refuse = true })
}

// Drop makes the server never answer for name, so clients time out.
func (s *Server) Drop(name string) {
	s.setBehaviour(name, func(b *behaviour) { b.drop = true })
}

// Delay makes the server wait d before answering for name, e.g. to hold a
// query in flight while others pile up behind it.
func (s *Server) Delay(name string, d time.Duration) {
	s.setBehaviour(name, func(b *behaviour) { b.delay = d })
}

func (s *Server) setBehaviour(name string, set func(*behaviour)) {
	name = dns.CanonicalName(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.behave[name]
	set(&b)
	s.behave[name] = b
}

// Queries returns how many queries the server has answered, counting error
// and truncated answers but not dropped queries.
func (s *Server) Queries() int { return int(s.queries.Load()) }

// Close stops the server. It is safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		close(s.closed)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.closeErr = errors.Join(s.udp.ShutdownContext(ctx), s.tcp.ShutdownContext(ctx))
		if s.closeErr != nil {
			s.closeErr = fmt.Errorf("dnstest: close: %w", s.closeErr)
		}
	})
	return s.closeErr
}

func (s *Server) serveUDP(w dns.ResponseWriter, req *dns.Msg) { s.serve(w, req, true) }
func (s *Server) serveTCP(w dns.ResponseWriter, req *dns.Msg) { s.serve(w, req, false) }

// serve applies any behaviour for the question's name, then answers.
func (s *Server) serve(w dns.ResponseWriter, req *dns.Msg, udp bool) {
	var b behaviour
	if len(req.Question) == 1 {
		s.mu.RLock()
		b = s.behave[dns.CanonicalName(req.Question[0].Name)]
		s.mu.RUnlock()
	}
	if b.drop {
		return
	}
	if b.delay > 0 {
		t := time.NewTimer(b.delay)
		select {
		case <-t.C:
		case <-s.closed:
			t.Stop()
			return
		}
	}

	var resp *dns.Msg
	switch {
	case b.servFail:
		resp = new(dns.Msg).SetRcode(req, dns.RcodeServerFailure)
	case b.refuse:
		resp = new(dns.Msg).SetRcode(req, dns.RcodeRefused)
	default:
		s.mu.RLock()
		resp = s.zone.answer(req)
		s.mu.RUnlock()
	}

	// RFC 6891 §7: answer EDNS with EDNS, and never exceed the client's
	// advertised size over UDP (512 bytes without EDNS, RFC 1035 §4.2.1).
	limit := dns.MinMsgSize
	if opt := req.IsEdns0(); opt != nil {
		limit = max(limit, int(opt.UDPSize()))
		resp.SetEdns0(ednsSize, false)
	}
	resp.Compress = true
	if udp && resp.Len() > limit {
		// Send no partial data: the client is to retry over TCP
		// (RFC 2181 §9), which is the path this exists to test.
		resp.Truncated = true
		resp.Answer, resp.Ns = nil, nil
		var extra []dns.RR
		for _, rr := range resp.Extra {
			if rr.Header().Rrtype == dns.TypeOPT {
				extra = append(extra, rr)
			}
		}
		resp.Extra = extra
	}
	if _, err := resp.Pack(); err != nil {
		// Records that parse but do not pack: fail loudly, not silently.
		resp = new(dns.Msg).SetRcode(req, dns.RcodeServerFailure)
	}
	s.queries.Add(1)
	_ = w.WriteMsg(resp)
}
