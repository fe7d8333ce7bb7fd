package dkim

import (
	"bytes"
	"context"
	"crypto"
	"testing"

	msgauth "github.com/emersion/go-msgauth/dkim"
)

// benchVerify measures Verify on a ~4 KiB message with a warm resolver
// cache: the cost per message of canonicalisation, hashing and the
// signature check, without the network.
func benchVerify(b *testing.B, key crypto.Signer, selector string) {
	benchVerifyMsg(b, sign(b, baseMessage(4096), key, selector))
}

// benchVerifyMsg measures Verify on msg, which must pass.
func benchVerifyMsg(b *testing.B, msg []byte) {
	e := newEnv(b)
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

// The 1 MiB benchmarks measure the body canonicalisation and hashing,
// which the signature check dominates on small messages.
func BenchmarkVerify1MiBRelaxed(b *testing.B) {
	benchVerifyMsg(b, sign(b, baseMessage(1<<20), getKeys(b).ed, "ed"))
}

func BenchmarkVerify1MiBSimple(b *testing.B) {
	benchVerifyMsg(b, sign(b, baseMessage(1<<20), getKeys(b).ed, "ed", func(o *msgauth.SignOptions) {
		o.HeaderCanonicalization = msgauth.CanonicalizationSimple
		o.BodyCanonicalization = msgauth.CanonicalizationSimple
	}))
}

// BenchmarkVerifyTwoSignatures1MiB: two signatures over one body, the
// common case of a list or forwarder signing again.
func BenchmarkVerifyTwoSignatures1MiB(b *testing.B) {
	k := getKeys(b)
	benchVerifyMsg(b, sign(b, sign(b, baseMessage(1<<20), k.ed, "ed"), k.rsa2048, "rsa2048"))
}

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
