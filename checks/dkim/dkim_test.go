package dkim

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	msgauth "github.com/emersion/go-msgauth/dkim"
)

// tcase is one message and the evidence the check must report for it.
type tcase struct {
	name   string
	msg    []byte
	opts   func(*Options) // optional changes to the env's options
	want   Result         // compared without Detail
	detail []string       // substrings of each signature's Detail, in order
}

// sigWant is a Signature as the common cases expect it.
func sigWant(sel, algo, result string, bits int) Signature {
	return Signature{
		Domain: testDomain, Selector: sel, Algorithm: algo, Result: result,
		KeyBits: bits, FromSigned: true, Identifier: "@" + testDomain,
	}
}

// cases are shared by the Verify and the streaming tests.
func cases(t *testing.T, e *env) []tcase {
	k := getKeys(t)
	msg := baseMessage(2000)
	now := time.Now()

	rsa2048 := sign(t, msg, k.rsa2048, "rsa2048")
	ed := sign(t, msg, k.ed, "ed")

	bodyChanged := bytes.Replace(rsa2048, []byte("lazy dog"), []byte("lazy cat"), 1)
	headerChanged := bytes.Replace(ed, []byte("Subject: quarterly"), []byte("Subject: urgent"), 1)

	withL := editSignature(t, rsa2048, func(f string) string {
		return strings.Replace(f, "DKIM-Signature:", "DKIM-Signature: l=100;", 1)
	})
	noFrom := editSignature(t, rsa2048, func(f string) string {
		return strings.Replace(f, "h=From:", "h=", 1)
	})
	sha1 := editSignature(t, rsa2048, func(f string) string {
		return strings.Replace(f, "a=rsa-sha256", "a=rsa-sha1", 1)
	})
	malformed := append([]byte("DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=rsa2048; this is not a tag list\r\n"), msg...)
	missingTag := editSignature(t, rsa2048, func(f string) string {
		return strings.Replace(f, "bh=", "xx=", 1)
	})
	// Selectors the zone answers badly for: sign with a good key under a
	// name whose lookup fails.
	under := func(sel string) []byte { return sign(t, msg, k.ed, sel) }

	// A good signature above a broken one, and the other way round.
	goodOverBroken := sign(t, under("missing"), k.rsa2048, "rsa2048")
	brokenOverGood := editSignature(t, sign(t, rsa2048, k.ed, "ed"), func(f string) string {
		return strings.Replace(f, "b=", "b=AAAA", 1)
	})
	tempOverFail := sign(t, bodyChanged, k.ed, "servfail")

	// Ten signatures; the first eight in header order are verified,
	// which are the last eight added.
	many := msg
	for i := range 10 {
		many = sign(t, many, k.ed, "many"+string(rune('0'+i)))
	}
	manyWant := Result{Result: Pass}
	for i := 9; i >= 2; i-- {
		manyWant.Signatures = append(manyWant.Signatures, sigWant("many"+string(rune('0'+i)), "ed25519-sha256", Pass, 256))
	}
	manyWant.Signatures = append(manyWant.Signatures, Signature{Result: Permerror})
	manyDetail := make([]string, 9)
	manyDetail[8] = "too many signatures: 10, only the first 8 verified"

	withIdentifier := sign(t, msg, k.ed, "ed", func(o *msgauth.SignOptions) { o.Identifier = "alice@mail.example.org" })
	expiring := sign(t, msg, k.ed, "ed", func(o *msgauth.SignOptions) { o.Expiration = now.Add(time.Hour) })

	// A header that ends without the empty line before the body.
	unterminated := bytes.TrimRight(sign(t, baseMessage(0), k.ed, "ed"), "\r\n")
	unterminated = unterminated[:bytes.Index(unterminated, []byte("\r\n\r\n"))]

	return []tcase{
		{name: "rsa2048 pass", msg: rsa2048,
			want: Result{Pass, []Signature{sigWant("rsa2048", "rsa-sha256", Pass, 2048)}}},
		{name: "rsa1024 pass", msg: sign(t, msg, k.rsa1024, "rsa1024"),
			want: Result{Pass, []Signature{sigWant("rsa1024", "rsa-sha256", Pass, 1024)}}},
		{name: "ed25519 pass", msg: ed,
			want: Result{Pass, []Signature{sigWant("ed", "ed25519-sha256", Pass, 256)}}},
		{name: "body changed", msg: bodyChanged,
			want:   Result{Fail, []Signature{sigWant("rsa2048", "rsa-sha256", Fail, 2048)}},
			detail: []string{"body hash did not verify"}},
		{name: "header changed", msg: headerChanged,
			want:   Result{Fail, []Signature{sigWant("ed", "ed25519-sha256", Fail, 256)}},
			detail: []string{"signature did not verify"}},
		{name: "rsa512 too small", msg: sign(t, msg, k.rsa512, "rsa512"),
			want:   Result{Fail, []Signature{sigWant("rsa512", "rsa-sha256", Fail, 512)}},
			detail: []string{"key too small: rsa 512 bits, minimum 1024"}},
		// go-msgauth measures the key in whole bytes (128 bytes = 1024);
		// RFC 8301 §3.2 counts bits.
		{name: "rsa1020 too small", msg: sign(t, msg, k.rsa1020, "rsa1020"),
			want:   Result{Fail, []Signature{sigWant("rsa1020", "rsa-sha256", Fail, 1020)}},
			detail: []string{"key too small: rsa 1020 bits"}},
		{name: "MinRSABits raised", msg: rsa2048, opts: func(o *Options) { o.MinRSABits = 3072 },
			want:   Result{Fail, []Signature{sigWant("rsa2048", "rsa-sha256", Fail, 2048)}},
			detail: []string{"minimum 3072"}},
		{name: "ed25519 ignores MinRSABits", msg: ed, opts: func(o *Options) { o.MinRSABits = 3072 },
			want: Result{Pass, []Signature{sigWant("ed", "ed25519-sha256", Pass, 256)}}},
		{name: "malformed signature field", msg: malformed,
			want: Result{Permerror, []Signature{func() Signature {
				s := sigWant("rsa2048", "rsa-sha256", Permerror, 0)
				s.FromSigned = false // no h= before the bad tag
				return s
			}()}},
			detail: []string{"malformed signature tags"}},
		{name: "missing required tag", msg: missingTag,
			want:   Result{Permerror, []Signature{sigWant("rsa2048", "rsa-sha256", Permerror, 0)}},
			detail: []string{"signature missing required tag"}},
		// RFC 6376 §6.1.2: no key record is PERMFAIL (no key for signature).
		{name: "NXDOMAIN key", msg: under("missing"),
			want:   Result{Permerror, []Signature{sigWant("missing", "ed25519-sha256", Permerror, 0)}},
			detail: []string{"no key for signature"}},
		{name: "NODATA key", msg: under("nodata"),
			want:   Result{Permerror, []Signature{sigWant("nodata", "ed25519-sha256", Permerror, 0)}},
			detail: []string{"no key for signature"}},
		{name: "revoked key", msg: under("revoked"),
			want:   Result{Permerror, []Signature{sigWant("revoked", "ed25519-sha256", Permerror, 0)}},
			detail: []string{"key revoked"}},
		// RFC 6376 §3.6.2.2: several key records are undefined; refused.
		{name: "two key records", msg: under("twokeys"),
			want:   Result{Permerror, []Signature{sigWant("twokeys", "ed25519-sha256", Permerror, 0)}},
			detail: []string{"multiple TXT records"}},
		// RFC 6376 §6.1.2: a query that fails to respond is TEMPFAIL.
		{name: "SERVFAIL key", msg: under("servfail"),
			want:   Result{Temperror, []Signature{sigWant("servfail", "ed25519-sha256", Temperror, 0)}},
			detail: []string{"key unavailable"}},
		{name: "timeout key", msg: under("drop"), opts: func(o *Options) { o.Lookup = e.short.LookupTXT },
			want:   Result{Temperror, []Signature{sigWant("drop", "ed25519-sha256", Temperror, 0)}},
			detail: []string{"key unavailable"}},
		{name: "no resolver", msg: ed, opts: func(o *Options) { o.Lookup = nil },
			want:   Result{Temperror, []Signature{sigWant("ed", "ed25519-sha256", Temperror, 0)}},
			detail: []string{"no resolver configured"}},
		{name: "unsigned", msg: msg, want: Result{Result: None}},
		{name: "unsigned, no body", msg: []byte("From: a@example.org\r\n"), want: Result{Result: None}},
		// l= added after signing: the body hash is now over 100 octets and
		// no longer matches bh=; the flag still says l= is there.
		{name: "l= present", msg: withL,
			want: Result{Fail, []Signature{func() Signature {
				s := sigWant("rsa2048", "rsa-sha256", Fail, 2048)
				s.BodyLength = true
				return s
			}()}},
			detail: []string{"body hash did not verify"}},
		// RFC 6376 §6.1.1: From not in h= is PERMFAIL (From field not signed).
		{name: "From not signed", msg: noFrom,
			want: Result{Permerror, []Signature{func() Signature {
				s := sigWant("rsa2048", "rsa-sha256", Permerror, 0)
				s.FromSigned = false
				return s
			}()}},
			detail: []string{"From field not signed"}},
		// RFC 8301 §3.1: rsa-sha1 MUST NOT be used for verifying.
		{name: "rsa-sha1", msg: sha1,
			want:   Result{Permerror, []Signature{sigWant("rsa2048", "rsa-sha1", Permerror, 2048)}},
			detail: []string{"hash algorithm too weak"}},
		{name: "good over broken", msg: goodOverBroken,
			want: Result{Pass, []Signature{
				sigWant("rsa2048", "rsa-sha256", Pass, 2048),
				sigWant("missing", "ed25519-sha256", Permerror, 0),
			}}},
		{name: "broken over good", msg: brokenOverGood,
			want: Result{Pass, []Signature{
				sigWant("ed", "ed25519-sha256", Fail, 256),
				sigWant("rsa2048", "rsa-sha256", Pass, 2048),
			}}},
		{name: "temperror beats fail", msg: tempOverFail,
			want: Result{Temperror, []Signature{
				sigWant("servfail", "ed25519-sha256", Temperror, 0),
				sigWant("rsa2048", "rsa-sha256", Fail, 2048),
			}}},
		{name: "ten signatures, eight verified", msg: many, want: manyWant, detail: manyDetail},
		{name: "MaxSignatures 1", msg: goodOverBroken, opts: func(o *Options) { o.MaxSignatures = 1 },
			want: Result{Pass, []Signature{
				sigWant("rsa2048", "rsa-sha256", Pass, 2048),
				{Result: Permerror},
			}},
			detail: []string{"", "too many signatures: 2, only the first 1 verified"}},
		{name: "identifier", msg: withIdentifier,
			want: Result{Pass, []Signature{func() Signature {
				s := sigWant("ed", "ed25519-sha256", Pass, 256)
				s.Identifier = "alice@mail.example.org"
				return s
			}()}}},
		{name: "not yet expired", msg: expiring,
			want: Result{Pass, []Signature{sigWant("ed", "ed25519-sha256", Pass, 256)}}},
		// RFC 6376 §3.5 x=, judged by Options.Now.
		{name: "expired by Now", msg: expiring, opts: func(o *Options) { o.Now = func() time.Time { return now.Add(2 * time.Hour) } },
			want:   Result{Permerror, []Signature{sigWant("ed", "ed25519-sha256", Permerror, 256)}},
			detail: []string{"signature has expired"}},
		{name: "header not terminated", msg: unterminated,
			want:   Result{Permerror, []Signature{sigWant("ed", "ed25519-sha256", Permerror, 0)}},
			detail: []string{"malformed header"}},
	}
}

func TestVerify(t *testing.T) {
	e := newEnv(t)
	for _, tc := range cases(t, e) {
		t.Run(tc.name, func(t *testing.T) {
			o := e.opts()
			if tc.opts != nil {
				tc.opts(&o)
			}
			got := Verify(testCtx(t), bytes.NewReader(tc.msg), o)
			checkResult(t, got, tc)
		})
	}
}

func checkResult(t *testing.T, got Result, tc tcase) {
	t.Helper()
	if !reflect.DeepEqual(strip(got), tc.want) {
		t.Errorf("result differs\n got: %s\nwant: %s", formatResult(got), formatResult(tc.want))
		return
	}
	for i, d := range tc.detail {
		if !strings.Contains(got.Signatures[i].Detail, d) {
			t.Errorf("signature %d: detail %q, want it to contain %q", i, got.Signatures[i].Detail, d)
		}
	}
	for i, s := range got.Signatures {
		if s.Detail == "" {
			t.Errorf("signature %d: empty detail", i)
		}
		if !strings.HasPrefix(s.Detail, "dkim: ") {
			t.Errorf("signature %d: detail %q lacks the package prefix", i, s.Detail)
		}
	}
}

// TestKeyLookupOnce holds that a signature costs one query, the key size
// included, and none once the resolver has the record cached.
func TestKeyLookupOnce(t *testing.T) {
	e := newEnv(t)
	k := getKeys(t)
	msg := sign(t, baseMessage(500), k.rsa2048, "rsa2048")
	var lookups int
	o := e.opts()
	o.Lookup = func(ctx context.Context, name string) ([]string, error) {
		lookups++
		return e.res.LookupTXT(ctx, name)
	}

	before := e.dns.Queries()
	r := Verify(testCtx(t), bytes.NewReader(msg), o)
	if r.Result != Pass || r.Signatures[0].KeyBits != 2048 {
		t.Fatalf("got %s", formatResult(r))
	}
	if lookups != 1 {
		t.Errorf("%d lookups, want 1", lookups)
	}
	if q := e.dns.Queries() - before; q != 1 {
		t.Errorf("%d DNS queries, want 1", q)
	}
	// Warm cache: no query at all.
	before = e.dns.Queries()
	Verify(testCtx(t), bytes.NewReader(msg), o)
	if q := e.dns.Queries() - before; q != 0 {
		t.Errorf("%d DNS queries with a warm cache, want 0", q)
	}
}

// TestMaxSignaturesQueries holds that signatures past the bound cost no
// lookup: a message with many signatures must not buy many queries.
func TestMaxSignaturesQueries(t *testing.T) {
	e := newEnv(t)
	k := getKeys(t)
	msg := baseMessage(300)
	for i := range 10 {
		msg = sign(t, msg, k.ed, "many"+string(rune('0'+i)))
	}
	before := e.dns.Queries()
	r := Verify(testCtx(t), bytes.NewReader(msg), e.opts())
	if q := e.dns.Queries() - before; q != DefaultMaxSignatures {
		t.Errorf("%d DNS queries, want %d", q, DefaultMaxSignatures)
	}
	if len(r.Signatures) != DefaultMaxSignatures+1 {
		t.Errorf("%d signatures reported, want %d", len(r.Signatures), DefaultMaxSignatures+1)
	}
}

// TestLookupErrors pins the DNS error contract for lookups that do not come
// from mxguard's resolver: only "not found" is permanent.
func TestLookupErrors(t *testing.T) {
	k := getKeys(t)
	msg := sign(t, baseMessage(100), k.ed, "ed")
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"not found", &net.DNSError{Err: "no such host", IsNotFound: true}, Permerror},
		{"wrapped not found", fmt.Errorf("lookup: %w", &net.DNSError{Err: "no such host", IsNotFound: true}), Permerror},
		{"temporary", &net.DNSError{Err: "server misbehaving", IsTemporary: true}, Temperror},
		{"wrapped temporary", fmt.Errorf("lookup: %w", &net.DNSError{Err: "server misbehaving", IsTemporary: true}), Temperror},
		{"timeout", &net.DNSError{Err: "i/o timeout", IsTimeout: true}, Temperror},
		{"unclassified DNS error", &net.DNSError{Err: "odd"}, Temperror},
		{"context canceled", context.Canceled, Temperror},
		{"deadline", context.DeadlineExceeded, Temperror},
		{"other", errors.New("boom"), Temperror},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := Options{Lookup: func(context.Context, string) ([]string, error) { return nil, tc.err }}
			r := Verify(testCtx(t), bytes.NewReader(msg), o)
			if r.Result != tc.want {
				t.Errorf("got %s, want %s", formatResult(r), tc.want)
			}
		})
	}
}

// TestCancelledContext: a context that has ended gives temperror, never a
// permanent failure of the sender's signature.
func TestCancelledContext(t *testing.T) {
	e := newEnv(t)
	msg := sign(t, baseMessage(100), getKeys(t).ed, "drop")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := Verify(ctx, bytes.NewReader(msg), e.opts())
	if r.Result != Temperror {
		t.Errorf("got %s, want temperror", formatResult(r))
	}
}

// errReader gives data, then an error instead of EOF.
type errReader struct {
	data []byte
	err  error
}

func (r *errReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// TestReadError: a message that cannot be read to its end gives temperror
// for every signature (the body is unknown), and, with several signatures,
// leaves no goroutine behind.
func TestReadError(t *testing.T) {
	e := newEnv(t)
	k := getKeys(t)
	msg := sign(t, sign(t, baseMessage(3000), k.ed, "ed"), k.rsa2048, "rsa2048")
	Verify(testCtx(t), bytes.NewReader(msg), e.opts()) // warm the cache
	base := settledGoroutines(t, -1)
	for _, cut := range []int{100, len(msg) / 2} {
		r := Verify(testCtx(t), &errReader{data: msg[:cut], err: errors.New("connection reset")}, e.opts())
		if r.Result != Temperror {
			t.Errorf("cut at %d: got %s, want temperror", cut, formatResult(r))
		}
		for _, s := range r.Signatures {
			if s.Result != Temperror || !strings.Contains(s.Detail, "connection reset") {
				t.Errorf("cut at %d: signature %+v", cut, s)
			}
		}
	}
	settledGoroutines(t, base)
}

// TestHeaderParityWithGoMsgauth holds that this package and go-msgauth
// find the same DKIM-Signature fields: the tests sign with go-msgauth, and
// two verifiers of one message must not disagree on what it carries.
func TestHeaderParityWithGoMsgauth(t *testing.T) {
	for _, h := range []string{
		"DKIM-Signature: v=1\r\n",
		"dkim-signature: v=1\r\n",
		"DKIM-Signature : v=1\r\n",
		" DKIM-Signature: v=1\r\n",
		"X: y\r\n DKIM-Signature: v=1\r\n",
		"DKIM-Signature: v=1\r\n\tfolded\r\nDKIM-Signature: v=1\r\n",
		"DKIM-Signature\r\n",
		"DKIM-Signature: v=1\n",
		"DKIM-Signature: v=1\r\r\n",
		"DKIM-Signature:v=1\r\nDKIM-Signature;v=1\r\n",
	} {
		msg := h + "\r\nbody\r\n"
		assertParity(t, []byte(msg))
	}
}

// assertParity fails t if the two parsers see different signature counts.
func assertParity(t testing.TB, msg []byte) {
	t.Helper()
	fields, _ := readHeader(newBufReader(msg))
	ours := len(signaturesOf(fields))
	verifs, err := msgauth.VerifyWithOptions(bytes.NewReader(msg), &msgauth.VerifyOptions{
		LookupTXT: func(string) ([]string, error) { return nil, errors.New("no") },
	})
	if err != nil && ours > 0 {
		return // go-msgauth could not read the header; neither result is used
	}
	if len(verifs) != ours {
		t.Errorf("%q: we see %d signatures, go-msgauth %d", msg, ours, len(verifs))
	}
}

func newBufReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }

// settledGoroutines waits until the count of goroutines running the
// package's code (packageGoroutines) is at most want (or, with want < 0,
// stops changing) and returns it; it fails t if the count stays above want.
func settledGoroutines(t testing.TB, want int) int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	last, stacks := packageGoroutines()
	for time.Now().Before(deadline) {
		if want >= 0 && last <= want {
			return last
		}
		time.Sleep(20 * time.Millisecond)
		n, s := packageGoroutines()
		if want < 0 && n == last {
			return n
		}
		last, stacks = n, s
	}
	if want >= 0 {
		t.Fatalf("%d goroutines of the package's code, want at most %d\n%s", last, want, stacks)
	}
	return last
}

// packageGoroutines counts the goroutines running this package's own
// code, not its tests': those a Prefetcher or Verify started. Counting
// every goroutine instead would count whatever other tests, the test DNS
// server or the runtime have running at that moment.
func packageGoroutines() (int, string) {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	var out strings.Builder
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "/checks/dkim/") && !strings.Contains(g, "_test.go") {
			n++
			out.WriteString(g + "\n\n")
		}
	}
	return n, out.String()
}

// TestPanicIsTemperror: a panic, in Verify or in a lookup on a goroutine
// of its own (two keys are fetched at once), is temperror and counted; it
// never passes and never crashes.
func TestPanicIsTemperror(t *testing.T) {
	k := getKeys(t)
	one := sign(t, baseMessage(100), k.ed, "ed")
	two := sign(t, one, k.ed, "ed")
	twoKeys := sign(t, one, k.rsa2048, "rsa2048")
	o := Options{Lookup: func(context.Context, string) ([]string, error) { panic("lookup exploded") }}
	for name, msg := range map[string][]byte{"one signature": one, "two signatures": two, "two keys": twoKeys} {
		t.Run(name, func(t *testing.T) {
			before := RecoveredPanics()
			r := Verify(testCtx(t), bytes.NewReader(msg), o)
			n := RecoveredPanics() - before
			panics.Add(-n) // expected here; TestMain insists on none elsewhere
			if n == 0 {
				t.Error("no panic counted")
			}
			if r.Result != Temperror {
				t.Errorf("got %s", formatResult(r))
			}
			for _, s := range r.Signatures {
				if s.Result != Temperror || !strings.Contains(s.Detail, "internal error") {
					t.Errorf("signature %+v", s)
				}
			}
		})
	}
}
