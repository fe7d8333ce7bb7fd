package state

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"mxguard/internal/testcert"
	"mxguard/internal/testredis"
)

// tlsRedis starts a redis-server that speaks TLS only, with a certificate
// for redis.test and 127.0.0.1, and returns it with the pool that trusts
// that certificate.
func tlsRedis(t *testing.T) (*testredis.Server, *x509.CertPool) {
	t.Helper()
	p := testcert.New(t, "redis.test")
	srv := testredis.StartTLS(t, testredis.TLS{CertFile: p.CertFile, KeyFile: p.KeyFile, CAFile: p.CertFile,
		ClientConfig: &tls.Config{RootCAs: p.Pool, ServerName: "redis.test", MinVersion: tls.VersionTLS12}})
	return srv, p.Pool
}

// TestRedisTLS: the store works over TLS with the CA that signed the
// server's certificate and the name in it (state.redis.tls: ca,
// server_name), by name and by address.
func TestRedisTLS(t *testing.T) {
	srv, pool := tlsRedis(t)
	ctx := context.Background()
	for _, name := range []string{"redis.test", "127.0.0.1"} {
		t.Run(name, func(t *testing.T) {
			s := NewRedis(RedisOptions{Address: srv.Addr, Prefix: name + ":", TLS: &tls.Config{RootCAs: pool, ServerName: name, MinVersion: tls.VersionTLS12}})
			defer s.Close()
			if err := s.Ping(ctx); err != nil {
				t.Fatalf("ping over TLS: %v", err)
			}
			for want := range int64(3) {
				if n, err := s.Count(ctx, "harvest:192.0.2.7", 1, time.Minute); err != nil || n != want+1 {
					t.Fatalf("count over TLS: %d, %v; want %d", n, err, want+1)
				}
			}
			tr := Triplet{Network: "192.0.2.0/24", Sender: "a@s.test", Rcpt: "u@example.org", Delay: time.Minute, RetryWindow: time.Hour, PassLifetime: time.Hour}
			if err := s.RecordGreylist(ctx, tr, Grey{State: GreyNew}); err != nil {
				t.Fatal(err)
			}
			if g, err := s.Greylist(ctx, tr); err != nil || g.State != GreyEarly {
				t.Fatalf("greylist over TLS: %+v, %v; want early", g, err)
			}
		})
	}
}

// TestRedisTLSWrongCA: a server whose certificate the configured CA did
// not sign, or that is not the configured name, is not used: each
// operation fails with a certificate error, and behind a Fallback mail
// goes on from the local store, in one episode.
func TestRedisTLSWrongCA(t *testing.T) {
	srv, pool := tlsRedis(t)
	ctx := context.Background()
	other := testcert.New(t, "redis.test")
	for name, cfg := range map[string]*tls.Config{
		"another CA":   {RootCAs: other.Pool, ServerName: "redis.test", MinVersion: tls.VersionTLS12},
		"another name": {RootCAs: pool, ServerName: "other.test", MinVersion: tls.VersionTLS12},
	} {
		t.Run(name, func(t *testing.T) {
			r := NewRedis(RedisOptions{Address: srv.Addr, TLS: cfg})
			var certErr *tls.CertificateVerificationError
			if err := r.Ping(ctx); !errors.As(err, &certErr) {
				t.Fatalf("ping: %v, want a certificate verification error", err)
			}
			obs := &episodes{}
			f := NewFallback(r, NewMemory(MemoryOptions{}), FallbackOptions{Observer: obs, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			defer f.Close()
			for want := range int64(3) {
				if n, err := f.Count(ctx, "harvest:192.0.2.7", 1, time.Minute); err != nil || n != want+1 {
					t.Fatalf("count through the fallback: %d, %v; want %d from the local store", n, err, want+1)
				}
			}
			if !f.InEpisode() || obs.n != 1 {
				t.Fatalf("in episode %v, %d episodes; want one", f.InEpisode(), obs.n)
			}
		})
	}
}

// episodes counts fallback episodes.
type episodes struct {
	NopObserver
	n int
}

func (e *episodes) FallbackEpisode() { e.n++ }
