package proxy

import (
	"context"
	"crypto/tls"
	"fmt"
	"math/rand"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

	"mxguard/internal/testcert"
)

func TestBackendUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	px := startProxy(t, addr, nil)
	d := hello(t, px.addr)
	if got := d.sendMail("a@sender.test", []string{"user@example.org"}, simpleMsg); !strings.HasPrefix(got, "451 4.4.1 backend unavailable") {
		t.Fatalf("got %q, want 451 4.4.1", got)
	}
}

// A kept connection that the backend closed meanwhile must not cost the
// client a 451: nothing of the message reached it, so a fresh one is used.
func TestDeadKeptConnectionRetried(t *testing.T) {
	be := startBackend(t, func(b *testBackend) { b.idleTimeout = 150 * time.Millisecond })
	px := startProxy(t, be.addr, nil)
	d := hello(t, px.addr)
	for i := 0; i < 2; i++ {
		if got := d.sendMail("a@sender.test", []string{"user@example.org"}, simpleMsg); !strings.HasPrefix(got, "250 ") {
			t.Fatalf("message %d: %q", i, got)
		}
		time.Sleep(400 * time.Millisecond)
	}
	if be.connections() != 2 {
		t.Fatalf("backend saw %d connections, want 2 (the kept one died)", be.connections())
	}
}

func TestBackendRefusesRecipient(t *testing.T) {
	be := startBackend(t, func(b *testBackend) { b.fault = func(int) fault { return faultRcpt } })
	px := startProxy(t, be.addr, nil)
	d := hello(t, px.addr)
	got := d.sendMail("a@sender.test", []string{"one@example.org", "two@example.org"}, simpleMsg)
	if !strings.HasPrefix(got, "451 4.1.1 backend refused recipient <two@example.org>: 550 5.1.1 no such user") {
		t.Fatalf("got %q", got)
	}
	if n := len(be.messages()); n != 0 {
		t.Fatalf("backend holds %d messages; nothing may be delivered when a recipient is refused", n)
	}
}

func TestBackendRepliesRelayed(t *testing.T) {
	for _, c := range []struct {
		f    fault
		want string
	}{
		{faultTemp, "451 4.3.0 try later"},
		{faultPerm, "554 5.7.1 content rejected"},
	} {
		be := startBackend(t, func(b *testBackend) { b.fault = func(int) fault { return c.f } })
		px := startProxy(t, be.addr, nil)
		d := hello(t, px.addr)
		if got := d.sendMail("a@sender.test", []string{"user@example.org"}, simpleMsg); !strings.HasPrefix(got, c.want) {
			t.Errorf("got %q, want %q", got, c.want)
		}
	}
}

func TestLMTPPartialDeliveryIsTempfail(t *testing.T) {
	be := startBackend(t, func(b *testBackend) { b.lmtp, b.lmtpRefuse = true, "full@example.org" })
	px := startProxy(t, be.addr, func(_ *Options, bo *BackendOptions) { bo.LMTP = true })
	d := hello(t, px.addr)
	got := d.sendMail("a@sender.test", []string{"ok@example.org", "full@example.org"}, simpleMsg)
	if !strings.HasPrefix(got, "451 4.3.0 backend took the message for 1 of 2 recipients") {
		t.Fatalf("got %q", got)
	}
	got = d.sendMail("a@sender.test", []string{"ok@example.org"}, simpleMsg)
	if !strings.HasPrefix(got, "250 2.0.0 <ok@example.org> Ok: delivered Q00002") {
		t.Fatalf("got %q", got)
	}
}

// startTLSProxy starts a proxy whose listener offers STARTTLS with a fresh
// certificate for mx.example.org.
func startTLSProxy(t *testing.T, backend string) (testcert.Pair, string) {
	t.Helper()
	cert := testcert.New(t, "mx.example.org")
	px := startProxy(t, backend, nil)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go px.srv.Serve(l, Listener{TLS: cert.Config})
	return cert, l.Addr().String()
}

func TestStartTLS(t *testing.T) {
	be := startBackend(t, nil)
	cert, addr := startTLSProxy(t, be.addr)
	d := dial(t, addr)
	d.expect("", "220 ")
	d.send("EHLO client.example.net\r\n")
	if got := d.reply(); got != "250 STARTTLS" {
		t.Fatalf("last EHLO line %q, want STARTTLS advertised", got)
	}
	d.expect("MAIL FROM:<a@sender.test>", "250 ")
	d.expect("STARTTLS", "220 2.0.0")
	tc := tls.Client(d.c, &tls.Config{RootCAs: cert.Pool, ServerName: "mx.example.org", MinVersion: tls.VersionTLS12})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	d.c, d.r = tc, newReader(tc)
	// The TLS session starts from scratch: no HELO, no transaction.
	d.expect("MAIL FROM:<a@sender.test>", "503 5.5.1 send EHLO first")
	d.expect("EHLO client.example.net", "250 ")
	got := d.sendMail("a@sender.test", []string{"user@example.org"}, simpleMsg)
	if !strings.HasPrefix(got, "250 2.0.0") {
		t.Fatalf("got %q", got)
	}
	data := be.messages()[0].Data
	if !regexp.MustCompile(`with ESMTPS id \S+\r\n\t\(version=TLS1\.3 cipher=TLS_\w+\)`).MatchString(data) {
		t.Fatalf("Received header lacks TLS details:\n%s", data)
	}
}

func TestBackendStartTLS(t *testing.T) {
	cert := testcert.New(t, "backend.test")
	be := startBackend(t, func(b *testBackend) { b.tls = cert.Config })
	for _, mode := range []StartTLSMode{StartTLSRequired, StartTLSOpportunistic} {
		px := startProxy(t, be.addr, func(_ *Options, bo *BackendOptions) {
			bo.StartTLS = mode
			bo.TLSConfig = &tls.Config{RootCAs: cert.Pool, ServerName: "backend.test", MinVersion: tls.VersionTLS12}
		})
		d := hello(t, px.addr)
		if got := d.sendMail("a@sender.test", []string{"user@example.org"}, simpleMsg); !strings.HasPrefix(got, "250 ") {
			t.Fatalf("%s: %q", mode, got)
		}
	}
	for i, m := range be.messages() {
		if !m.TLS {
			t.Errorf("message %d reached the backend without TLS", i)
		}
	}
	// A backend whose certificate does not verify gets nothing.
	px := startProxy(t, be.addr, func(_ *Options, bo *BackendOptions) {
		bo.StartTLS = "required"
		bo.TLSConfig = &tls.Config{ServerName: "backend.test", MinVersion: tls.VersionTLS12}
	})
	d := hello(t, px.addr)
	if got := d.sendMail("a@sender.test", []string{"user@example.org"}, simpleMsg); !strings.HasPrefix(got, "451 4.4.1") {
		t.Fatalf("unverifiable backend certificate: %q, want 451 4.4.1", got)
	}
	// Without STARTTLS on offer, "required" delivers nothing.
	plain := startBackend(t, nil)
	px = startProxy(t, plain.addr, func(_ *Options, bo *BackendOptions) { bo.StartTLS = "required" })
	d = hello(t, px.addr)
	if got := d.sendMail("a@sender.test", []string{"user@example.org"}, simpleMsg); !strings.HasPrefix(got, "451 4.4.1") {
		t.Fatalf("backend without STARTTLS: %q, want 451 4.4.1", got)
	}
	if len(plain.messages()) != 0 {
		t.Fatal("plaintext backend got a message despite starttls: required")
	}
}

func TestLMTPOverUnixSocket(t *testing.T) {
	be := startBackend(t, func(b *testBackend) { b.lmtp, b.unix = true, true })
	px := startProxy(t, be.addr, func(_ *Options, bo *BackendOptions) { bo.Network, bo.LMTP = "unix", true })
	d := hello(t, px.addr)
	got := d.sendMail("a@sender.test", []string{"one@example.org", "two@example.org"}, simpleMsg)
	if !strings.HasPrefix(got, "250 2.0.0 <one@example.org> Ok: delivered Q00001") {
		t.Fatalf("got %q", got)
	}
	if m := be.messages(); len(m) != 1 || len(m[0].Rcpts) != 2 {
		t.Fatalf("backend holds %+v", m)
	}
}

// Plaintext pipelined after STARTTLS is dropped, never executed inside the
// TLS session (CVE-2011-0411), and the client is marked as pipelining
// without permission: its mail is refused.
func TestPipeliningAfterStartTLS(t *testing.T) {
	be := startBackend(t, nil)
	cert, addr := startTLSProxy(t, be.addr)
	d := dial(t, addr)
	d.expect("", "220 ")
	d.expect("EHLO client.example.net", "250 ")
	d.send("STARTTLS\r\nRSET\r\n")
	d.expect("", "220 2.0.0")
	tc := tls.Client(d.c, &tls.Config{RootCAs: cert.Pool, ServerName: "mx.example.org", MinVersion: tls.VersionTLS12})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	d.c, d.r = tc, newReader(tc)
	// Had the RSET been run inside TLS, this EHLO's reply would come second.
	d.expect("EHLO client.example.net", "250 ")
	d.expect("MAIL FROM:<a@sender.test>", "550 5.5.1 protocol error")
}

func TestTLS11Refused(t *testing.T) {
	be := startBackend(t, nil)
	cert, addr := startTLSProxy(t, be.addr)
	d := dial(t, addr)
	d.expect("", "220 ")
	d.expect("EHLO client.example.net", "250 ")
	d.expect("STARTTLS", "220 ")
	tc := tls.Client(d.c, &tls.Config{RootCAs: cert.Pool, ServerName: "mx.example.org", MaxVersion: tls.VersionTLS11, MinVersion: tls.VersionTLS10})
	if err := tc.Handshake(); err == nil {
		t.Fatal("TLS 1.1 handshake succeeded; want TLS 1.2 or newer only")
	}
}

func TestProxyProtocol(t *testing.T) {
	be := startBackend(t, nil)
	px := startProxy(t, be.addr, nil)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go px.srv.Serve(ProxyProtoListener(l, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, time.Second), Listener{})
	for _, version := range []byte{1, 2} {
		t.Run(fmt.Sprintf("v%d", version), func(t *testing.T) {
			d := dial(t, l.Addr().String())
			h := proxyproto.HeaderProxyFromAddrs(version,
				&net.TCPAddr{IP: net.ParseIP("203.0.113.9"), Port: 40000 + int(version)},
				&net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 25})
			if _, err := h.WriteTo(d.c); err != nil {
				t.Fatal(err)
			}
			d.expect("", "220 ")
			d.expect("EHLO client.example.net", "250 ")
			d.sendMail("a@sender.test", []string{"user@example.org"}, simpleMsg)
		})
	}
	msgs := be.messages()
	if len(msgs) != 2 {
		t.Fatalf("backend holds %d messages", len(msgs))
	}
	for _, m := range msgs {
		if !strings.HasPrefix(m.Data, "Received: from client.example.net ([203.0.113.9])") {
			t.Errorf("Received header does not name the PROXY client:\n%s", m.Data[:120])
		}
	}
	// Without a header the connection is closed, not served as the
	// balancer's own address.
	d := dial(t, l.Addr().String())
	d.c.SetDeadline(time.Now().Add(3 * time.Second))
	if line, err := d.r.ReadString('\n'); err == nil {
		t.Fatalf("connection without PROXY header got %q", line)
	}
}

func TestDrain(t *testing.T) {
	be := startBackend(t, nil)
	px := startProxy(t, be.addr, nil)
	idle := hello(t, px.addr)
	busy := hello(t, px.addr)
	busy.expect("MAIL FROM:<a@sender.test>", "250 ")
	busy.expect("RCPT TO:<user@example.org>", "250 ")

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- px.srv.Shutdown(ctx)
	}()
	// The idle session is told at once; the one in a transaction finishes.
	idle.expect("", "421 4.3.2 mx.example.org service shutting down")
	busy.expect("DATA", "354 ")
	busy.send(simpleMsg + ".\r\n")
	busy.expect("", "250 2.0.0 Ok: queued")
	busy.expect("MAIL FROM:<a@sender.test>", "421 4.3.2")
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if _, err := net.DialTimeout("tcp", px.addr, time.Second); err == nil {
		t.Fatal("still accepting after Shutdown")
	}
}

func TestDrainTimeout(t *testing.T) {
	be := startBackend(t, nil)
	px := startProxy(t, be.addr, nil)
	busy := hello(t, px.addr)
	busy.expect("MAIL FROM:<a@sender.test>", "250 ")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := px.srv.Shutdown(ctx); err == nil {
		t.Fatal("Shutdown returned nil though a session outlived the drain timeout")
	}
	busy.expect("", "421 4.3.2")
}

// TestFaultInjection sends many messages through mxguard to a backend that
// at random refuses, drops the connection before or after storing, or
// stalls past our timeout. Every message the client got 250 for must be in
// the backend: that is the contract that no acknowledged message is lost.
func TestFaultInjection(t *testing.T) {
	const messages = 1200
	rng := rand.New(rand.NewSource(1))
	var rmu sync.Mutex
	faults := map[int]fault{}
	be := startBackend(t, func(b *testBackend) {
		b.stall = 300 * time.Millisecond
		b.fault = func(seq int) fault {
			rmu.Lock()
			defer rmu.Unlock()
			if f, ok := faults[seq]; ok {
				return f
			}
			f := faultNone
			switch r := rng.Intn(100); {
			case r < 8:
				f = faultTemp
			case r < 16:
				f = faultPerm
			case r < 22:
				f = faultDropBefore
			case r < 28:
				f = faultDropAfter
			case r < 30:
				f = faultStall
			}
			faults[seq] = f
			return f
		}
	})
	px := startProxy(t, be.addr, func(_ *Options, bo *BackendOptions) { bo.DataTimeout = 100 * time.Millisecond })

	var mu sync.Mutex
	acked := map[string]bool{} // message marker → got 250
	counts := map[string]int{}
	var wg sync.WaitGroup
	const clients = 8
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			d := hello(t, px.addr)
			for i := c; i < messages; i += clients {
				marker := fmt.Sprintf("X-Marker: m%05d", i)
				got := d.sendMail("a@sender.test", []string{"user@example.org"}, marker+"\r\nSubject: t\r\n\r\nbody\r\n")
				mu.Lock()
				counts[got[:1]]++
				if strings.HasPrefix(got, "250 ") {
					acked[marker] = true
				} else if got[0] != '4' && got[0] != '5' {
					t.Errorf("unexpected reply %q", got)
				}
				mu.Unlock()
			}
			d.expect("QUIT", "221 ")
		}(c)
	}
	wg.Wait()
	held := map[string]bool{}
	for _, m := range be.messages() {
		for _, line := range strings.Split(m.Data, "\r\n") {
			if strings.HasPrefix(line, "X-Marker: ") {
				held[line] = true
			}
		}
	}
	lost := 0
	for marker := range acked {
		if !held[marker] {
			lost++
			t.Errorf("%s got 250 but the backend does not hold it", marker)
		}
	}
	t.Logf("%d messages: replies by class %v; backend holds %d distinct; lost %d", messages, counts, len(held), lost)
	if counts["2"] == 0 || counts["4"] == 0 || counts["5"] == 0 {
		t.Fatalf("fault mix did not exercise every outcome: %v", counts)
	}
}
