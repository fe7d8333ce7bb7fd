package proxy

import (
	"bytes"
	"crypto/tls"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

	"mxguard/internal/testcert"
	"mxguard/policy"
)

// ehloLines sends EHLO and returns every line of the reply.
func (d *dialog) ehloLines() []string {
	d.t.Helper()
	d.send("EHLO client.example.net\r\n")
	var lines []string
	for {
		line, err := d.r.ReadString('\n')
		if err != nil {
			d.t.Fatalf("EHLO: %v", err)
		}
		lines = append(lines, strings.TrimRight(line, "\r\n"))
		if len(line) < 4 || line[3] != '-' {
			return lines
		}
	}
}

// TestReconfigure: new sessions get the new options, a session in flight
// keeps its own, and the rate limits remember their clients across a
// reconfiguration that leaves them unchanged.
func TestReconfigure(t *testing.T) {
	be := startBackend(t, nil)
	rate := RateLimits{ConnectionsPerMinute: 2}
	px := startProxy(t, be.addr, func(o *Options, _ *BackendOptions) { o.Rate = withRate(rate) })
	opts := func(host string, size int64, r RateLimits) Options {
		o := testOptions(px.dir)
		o.Hostname, o.MaxMessageBytes, o.Rate = host, size, withRate(r)
		o.Policy, o.Backend = policy.NewEngine(policy.Options{Domains: []string{"example.org"}}), px.fwd
		return o
	}
	old := dialFrom(t, "127.0.0.5", px.addr)
	old.expect("", "220 mx.example.org ")
	px.srv.Reconfigure(opts("mx2.example.org", 2<<20, rate))

	d := dialFrom(t, "127.0.0.6", px.addr)
	d.expect("", "220 mx2.example.org ")
	if got := d.ehloLines(); got[0] != "250-mx2.example.org" || !contains(got, "250-SIZE 2097152") {
		t.Fatalf("EHLO of a new session: %q", got)
	}
	if got := old.ehloLines(); got[0] != "250-mx.example.org" || !contains(got, "250-SIZE 1048576") {
		t.Fatalf("EHLO of the session from before: %q", got)
	}
	// 127.0.0.5 used one of its two connections before, one now; the
	// third is over the limit the reconfiguration kept.
	dialFrom(t, "127.0.0.5", px.addr).expect("", "220 ")
	dialFrom(t, "127.0.0.5", px.addr).expect("", "421 4.7.0 mx2.example.org too many connections per minute")
	// Changed limits start afresh.
	px.srv.Reconfigure(opts("mx3.example.org", 2<<20, RateLimits{ConnectionsPerMinute: 3}))
	dialFrom(t, "127.0.0.5", px.addr).expect("", "220 mx3.example.org ")
}

func contains(lines []string, s string) bool {
	for _, l := range lines {
		if l == s {
			return true
		}
	}
	return false
}

// TestListenerTLSFunc: a listener with TLSFunc offers STARTTLS, and which
// certificate, as the function says when each session starts.
func TestListenerTLSFunc(t *testing.T) {
	be := startBackend(t, nil)
	px := startProxy(t, be.addr, nil)
	var cur atomic.Pointer[tls.Config]
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go px.srv.Serve(l, Listener{TLSFunc: cur.Load})
	d := dial(t, l.Addr().String())
	d.expect("", "220 ")
	if got := d.ehloLines(); contains(got, "250-STARTTLS") {
		t.Fatalf("STARTTLS offered without a configuration: %q", got)
	}
	d.expect("STARTTLS", "502 5.5.1 ")
	for _, cert := range []testcert.Pair{testcert.New(t, "mx.example.org"), testcert.New(t, "mx.example.org")} {
		cur.Store(cert.Config)
		d := dial(t, l.Addr().String())
		d.expect("", "220 ")
		d.expect("EHLO client.example.net", "250 ")
		d.expect("STARTTLS", "220 ")
		tc := tls.Client(d.c, &tls.Config{RootCAs: cert.Pool, ServerName: "mx.example.org", MinVersion: tls.VersionTLS12})
		if err := tc.Handshake(); err != nil {
			t.Fatalf("handshake against the current certificate: %v", err)
		}
		if !bytes.Equal(tc.ConnectionState().PeerCertificates[0].Raw, cert.Config.Certificates[0].Certificate[0]) {
			t.Fatal("the handshake presented another certificate")
		}
		tc.Close()
	}
}

// TestProxyProtoListenerFunc: the trusted load balancers are read at each
// connection.
func TestProxyProtoListenerFunc(t *testing.T) {
	be := startBackend(t, nil)
	px := startProxy(t, be.addr, nil)
	var trusted atomic.Pointer[[]netip.Prefix]
	trusted.Store(&[]netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go px.srv.Serve(ProxyProtoListenerFunc(l, func() []netip.Prefix { return *trusted.Load() }, time.Second), Listener{})
	try := func() (string, error) {
		d := dialFrom(t, "127.0.0.1", l.Addr().String())
		h := proxyproto.HeaderProxyFromAddrs(1, &net.TCPAddr{IP: net.ParseIP("203.0.113.9"), Port: 40000},
			&net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 25})
		if _, err := h.WriteTo(d.c); err != nil {
			return "", err
		}
		_ = d.c.SetReadDeadline(time.Now().Add(3 * time.Second))
		return d.r.ReadString('\n')
	}
	if line, err := try(); err == nil {
		t.Fatalf("an untrusted peer's PROXY header was taken: %q", line)
	}
	trusted.Store(&[]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")})
	if line, err := try(); err != nil || !strings.HasPrefix(line, "220 ") {
		t.Fatalf("a newly trusted peer was refused: %q, %v", line, err)
	}
}
