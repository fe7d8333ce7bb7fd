package testredis

import (
	"crypto/tls"
	"testing"

	"mxguard/internal/testcert"
)

// TestStartStopRestart: the server answers, is gone once stopped, and
// answers again after a restart on the same address.
func TestStartStopRestart(t *testing.T) {
	s := Start(t)
	if err := Ping(s.Addr); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	if err := Ping(s.Addr); err == nil {
		t.Fatal("a stopped server still answers")
	}
	s.Restart(t)
	if err := Ping(s.Addr); err != nil {
		t.Fatal(err)
	}
}

// TestStartTLS: a TLS server answers over TLS with a client that trusts
// its certificate, and not over plain TCP.
func TestStartTLS(t *testing.T) {
	p := testcert.New(t, "redis.test")
	s := StartTLS(t, TLS{CertFile: p.CertFile, KeyFile: p.KeyFile, CAFile: p.CertFile,
		ClientConfig: &tls.Config{RootCAs: p.Pool, ServerName: "redis.test", MinVersion: tls.VersionTLS12}})
	if err := s.Ping(); err != nil {
		t.Fatalf("over TLS: %v", err)
	}
	if err := Ping(s.Addr); err == nil {
		t.Fatal("a TLS-only server answered PING in plain text")
	}
}
