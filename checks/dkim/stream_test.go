package dkim

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// feed writes msg to v in random chunks of 1 to max octets.
func feed(t testing.TB, v *Verifier, msg []byte, rng *rand.Rand, max int) {
	t.Helper()
	for len(msg) > 0 {
		n := min(len(msg), 1+rng.IntN(max))
		if w, err := v.Write(msg[:n]); err != nil || w != n {
			t.Errorf("Write: %d, %v", w, err) // not Fatal: feed runs on other goroutines too
			return
		}
		msg = msg[n:]
	}
}

// TestVerifierMatchesVerify: streaming gives exactly what Verify gives, for
// every case, fed in small random chunks.
func TestVerifierMatchesVerify(t *testing.T) {
	e := newEnv(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range cases(t, e) {
		t.Run(tc.name, func(t *testing.T) {
			o := e.opts()
			if tc.opts != nil {
				tc.opts(&o)
			}
			want := Verify(testCtx(t), bytes.NewReader(tc.msg), o)
			for _, max := range []int{1, 7, 64, 4096} {
				v := NewVerifier(testCtx(t), o)
				feed(t, v, tc.msg, rng, max)
				got := v.Close()
				if !reflect.DeepEqual(got, want) {
					t.Errorf("chunks up to %d: streaming differs\n got: %s\nwant: %s", max, formatResult(got), formatResult(want))
				}
				checkResult(t, got, tc)
			}
		})
	}
}

// TestVerifierWriteDoesNotWait: while the key lookup is in flight, the
// writer is not held up. The lookup here waits until the whole message has
// been written; with a writer that waited for the reader (as on a bare
// io.Pipe) the writes could never finish.
func TestVerifierWriteDoesNotWait(t *testing.T) {
	e := newEnv(t)
	msg := sign(t, baseMessage(1<<20), getKeys(t).ed, "ed")
	release := make(chan struct{})
	asked := make(chan struct{}, 1)
	o := e.opts()
	o.Lookup = func(ctx context.Context, name string) ([]string, error) {
		asked <- struct{}{}
		<-release
		return e.res.LookupTXT(ctx, name)
	}
	v := NewVerifier(testCtx(t), o)
	// The header first: go-msgauth looks the key up before it reads the
	// body, so the lookup is then pending and stays so.
	hdr := bytes.Index(msg, []byte("\r\n\r\n")) + 4
	feed(t, v, msg[:hdr], rand.New(rand.NewPCG(3, 4)), 64)
	select {
	case <-asked:
	case <-time.After(10 * time.Second):
		t.Fatal("the key was never looked up")
	}
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		feed(t, v, msg[hdr:], rand.New(rand.NewPCG(3, 4)), 8192)
	}()
	select {
	case <-wrote:
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("Write waited for the key lookup")
	}
	close(release)
	if r := v.Close(); r.Result != Pass {
		t.Fatalf("got %s", formatResult(r))
	}
}

// TestVerifierAbort: Abort releases the goroutine even while a lookup hangs,
// Write after Abort is harmless, and Close after Abort says temperror.
func TestVerifierAbort(t *testing.T) {
	e := newEnv(t)
	k := getKeys(t)
	// Two signatures, so go-msgauth's parallel path (one goroutine per
	// signature) is the one being aborted; one lookup never answers.
	msg := sign(t, sign(t, baseMessage(20000), k.ed, "drop"), k.rsa2048, "rsa2048")
	// The short resolver, so that the queries left in flight by the aborted
	// lookups end (they are shared, and run out their own timeout) well
	// before settledGoroutines gives up.
	o := Options{Lookup: e.short.LookupTXT}
	Verify(testCtx(t), bytes.NewReader(msg), o) // warm the cache
	base := settledGoroutines(t, -1)

	rng := rand.New(rand.NewPCG(5, 6))
	var vs []*Verifier
	for i := range 50 {
		v := NewVerifier(testCtx(t), o)
		feed(t, v, msg[:rng.IntN(len(msg))], rng, 512) // part of the message
		if i%2 == 0 {
			v.Abort()
		}
		vs = append(vs, v)
	}
	for i, v := range vs {
		if i%2 == 1 {
			v.Abort()
		}
		if _, err := v.Write([]byte("more\r\n")); err != nil {
			t.Errorf("Write after Abort: %v", err)
		}
	}
	settledGoroutines(t, base)
	for _, v := range vs {
		if r := v.Close(); r.Result != Temperror || len(r.Signatures) != 0 {
			t.Errorf("Close after Abort: %s", formatResult(r))
		}
	}
}

// TestVerifierContextEnds: a Verifier that is neither closed nor aborted
// still lets its goroutine go when its context ends.
func TestVerifierContextEnds(t *testing.T) {
	e := newEnv(t)
	msg := sign(t, baseMessage(5000), getKeys(t).ed, "ed")
	base := settledGoroutines(t, -1)
	ctx, cancel := context.WithCancel(context.Background())
	for range 20 {
		v := NewVerifier(ctx, e.opts())
		if _, err := v.Write(msg[:len(msg)/2]); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	settledGoroutines(t, base)
}

func TestVerifierClose(t *testing.T) {
	e := newEnv(t)
	msg := sign(t, baseMessage(500), getKeys(t).ed, "ed")
	v := NewVerifier(testCtx(t), e.opts())
	if _, err := io.Copy(v, bytes.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	r1 := v.Close()
	if r1.Result != Pass {
		t.Fatalf("got %s", formatResult(r1))
	}
	if r2 := v.Close(); !reflect.DeepEqual(r1, r2) {
		t.Errorf("second Close: %s, first %s", formatResult(r2), formatResult(r1))
	}
	if _, err := v.Write([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close: %v, want ErrClosed", err)
	}
	// Abort after Close is harmless and does not change the result.
	v.Abort()
	if r3 := v.Close(); !reflect.DeepEqual(r1, r3) {
		t.Errorf("Close after Abort after Close: %s, first %s", formatResult(r3), formatResult(r1))
	}
}

// TestVerifierUnsigned: with no signature in the header section, no
// goroutine starts and the body is neither buffered nor read.
func TestVerifierUnsigned(t *testing.T) {
	e := newEnv(t)
	base := settledGoroutines(t, -1)
	v := NewVerifier(testCtx(t), e.opts())
	if _, err := v.Write(baseMessage(0)); err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<16)
	for range 64 {
		v.Write(chunk)
	}
	v.mu.Lock()
	state, held, pipe := v.state, len(v.head), v.buf
	v.mu.Unlock()
	if state != unsigned || held != 0 || pipe != nil {
		t.Errorf("after an unsigned header: state %d, %d octets held, pipe %v; want unsigned, 0, none", state, held, pipe)
	}
	settledGoroutines(t, base)
	if r := v.Close(); r.Result != None || len(r.Signatures) != 0 {
		t.Errorf("got %s", formatResult(r))
	}
}

// TestVerifierStartsWhenUnsure: the shortcut for unsigned mail gives what
// Verify gives whenever the header might name a signature, or the header
// never ends, or the message is aborted before its header ended.
func TestVerifierStartsWhenUnsure(t *testing.T) {
	e := newEnv(t)
	k := getKeys(t)
	signed := sign(t, baseMessage(100), k.ed, "ed")
	for name, msg := range map[string][]byte{
		"subject names it":         append([]byte("Subject: about DKIM-SIGNATURE\r\n"), baseMessage(100)...),
		"Kelvin sign in the name":  append([]byte("D\u212aIM-Signature: v=1; a=rsa-sha256; d=x; s=y; h=from; bh=; b=\r\n"), baseMessage(100)...),
		"no end of header":         []byte("From: a@sender.test\r\nSubject: x\r\n"),
		"signed, no end of header": bytes.TrimSuffix(signed[:bytes.Index(signed, []byte("\r\n\r\n"))+2], nil),
		"signed":                   signed,
		"long header":              append([]byte("X-Long: "+string(bytes.Repeat([]byte("a"), maxHeld+10))+"\r\n"), signed...),
		"empty":                    nil,
		"LF line endings":          bytes.ReplaceAll(signed, []byte("\r\n"), []byte("\n")),
	} {
		want := Verify(testCtx(t), bytes.NewReader(msg), e.opts())
		for _, max := range []int{1, 13, 1 << 20} {
			v := NewVerifier(testCtx(t), e.opts())
			feed(t, v, msg, rand.New(rand.NewPCG(7, 8)), max)
			if got := v.Close(); !reflect.DeepEqual(got, want) {
				t.Errorf("%s, chunks up to %d: %s, Verify gives %s", name, max, formatResult(got), formatResult(want))
			}
		}
	}
	v := NewVerifier(testCtx(t), e.opts())
	v.Write([]byte("From: a@sender.test\r\n"))
	v.Abort()
	if r := v.Close(); r.Result != Temperror {
		t.Errorf("aborted within the header: %s, want temperror", formatResult(r))
	}
}
