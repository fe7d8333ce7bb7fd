package dkim

import (
	"bytes"
	"context"
	"crypto"
	"testing"
)

// benchVerify measures Verify on a ~4 KiB message with a warm resolver
// cache: the cost per message of canonicalisation, hashing and the
// signature check, without the network.
func benchVerify(b *testing.B, key crypto.Signer, selector string) {
	e := newEnv(b)
	msg := sign(b, baseMessage(4096), key, selector)
	o := e.opts()
	ctx := context.Background()
	if r := Verify(ctx, bytes.NewReader(msg), o); r.Result != Pass {
		b.Fatalf("got %s", formatResult(r))
	}
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if r := Verify(ctx, bytes.NewReader(msg), o); r.Result != Pass {
			b.Fatal(r.Result)
		}
	}
}

func BenchmarkVerifyRSA2048(b *testing.B) { benchVerify(b, getKeys(b).rsa2048, "rsa2048") }
func BenchmarkVerifyEd25519(b *testing.B) { benchVerify(b, getKeys(b).ed, "ed") }

// BenchmarkPrefetchThenVerifyEd25519 is the proxy's path: the prefetcher
// fed in 1 KiB writes as the message arrives, then Verify on the whole of
// it.
func BenchmarkPrefetchThenVerifyEd25519(b *testing.B) {
	e := newEnv(b)
	msg := sign(b, baseMessage(4096), getKeys(b).ed, "ed")
	o := e.opts()
	ctx := context.Background()
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		p := NewPrefetcher(ctx, o)
		for m := msg; len(m) > 0; {
			n := min(len(m), 1024)
			p.Write(m[:n])
			m = m[n:]
		}
		if r := Verify(ctx, bytes.NewReader(msg), o); r.Result != Pass {
			b.Fatal(r.Result)
		}
		p.Stop()
	}
}
