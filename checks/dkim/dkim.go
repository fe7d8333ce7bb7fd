// Package dkim is mxguard's DKIM check (RFC 6376, updated by RFC 8301 and
// RFC 8463). It verifies every DKIM-Signature of a message and reports, per
// signature and as a summary, the RFC 8601 §2.7.1 result words, with the
// facts a rule may want to weigh: the key size, whether l= is present,
// whether From is signed.
//
// A check reports evidence; it never decides, and it knows nothing of SMTP
// sessions or rules.
//
// The verification is this package's own: tags, key record,
// canonicalisation, body hash and signature check (crypto/rsa,
// crypto/ed25519). It used to be github.com/emersion/go-msgauth/dkim's,
// which cannot be corrected from outside: it compares i= with d= by case
// (RFC 6376 §3.5 and RFC 4343 say without), ignores the key's t=s flag
// (RFC 6376 §3.6.1), and refuses every l= signature, so that it cannot
// tell a signature over the whole body from one that leaves a tail
// unsigned. Those all sit inside the signed header field or inside its
// single verify function, so neither preparing the message nor reading
// its answer could fix them. go-msgauth still signs in the tests, and its
// error texts are kept. Owning the step also lets one pass over the body
// feed every signature's hash (go-msgauth copies it through a pipe per
// signature) and lets Options.Now be the only clock.
//
// Policy choices, each with its reason:
//
//   - rsa-sha1 is permerror, not fail. RFC 8301 §3.1 says rsa-sha1 MUST NOT
//     be used for verifying, so a verifier treats it as an unsupported
//     algorithm, which RFC 6376 §6.1.1 makes a PERMFAIL; RFC 8601 §2.7.1
//     keeps "fail" for signatures that were acceptable but did not verify,
//     and an rsa-sha1 signature is never computed at all.
//   - An RSA key shorter than Options.MinRSABits (never less than 1024) is
//     fail ("key too small"): RFC 8301 §3.2 says such signatures MUST NOT
//     be considered valid. The size is the modulus bit length, so a
//     1020-bit key does not pass as 1024.
//   - l= (RFC 6376 §3.4.5) is honoured: the body hash covers the first l
//     octets of the canonical body. When they are the whole body the
//     signature passes like any other (Signature.BodyLength says l= was
//     there). When the body goes on past them, that tail is not signed and
//     can be anything (RFC 6376 §8.2), so a signature that verifies is
//     policy, RFC 8601 §2.7.1's word for "verified, but not acceptable",
//     never pass: DMARC, which counts only pass, does not count it.
//   - i= compares with d= without regard to case, and a key with t=s
//     accepts only an i= whose domain is d= itself (RFC 6376 §3.6.1); any
//     other i= is permerror ("domain mismatch"), as RFC 6376 §6.1.1 has it.
//   - A missing key (NXDOMAIN, NODATA) is permerror (RFC 6376 §6.1.2,
//     "no key for signature"); any other lookup failure is temperror
//     (RFC 6376 §6.1.2, "key unavailable").
//   - Signatures beyond Options.MaxSignatures are not verified; they are
//     reported as one extra entry with result permerror and detail "too many
//     signatures", so Result.Signatures has at most MaxSignatures+1 entries.
//     RFC 6376 §6.1 lets a verifier limit the signatures it tries; a message
//     carrying more is a resource-exhaustion attempt worth seeing.
//   - Neutral is a valid summary word (it ranks lowest) but this package
//     produces it nowhere today: every outcome maps to a more telling word.
package dkim

import (
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"mxguard/internal/membudget"
)

// Result words, RFC 8601 §2.7.1.
const (
	None      = "none"      // the message carries no DKIM-Signature
	Pass      = "pass"      // the signature verified
	Fail      = "fail"      // the signature did not verify, or was refused (key too small)
	Policy    = "policy"    // the signature verified, but over part of the body only (l=)
	Neutral   = "neutral"   // reserved; not produced by this package
	Temperror = "temperror" // the key could not be fetched now; try later
	Permerror = "permerror" // the signature or its key record is unusable
)

// Defaults applied to zero Options fields.
const (
	DefaultMaxSignatures = 8
	DefaultMinRSABits    = 1024 // RFC 8301 §3.2
)

// TXTLookup returns the TXT records of name, one string per record with the
// strings of a multi-string record joined (as net.LookupTXT does).
//
// Errors: a *net.DNSError (wrapped or not) with IsNotFound means the name
// or the record does not exist; any other error is taken as temporary.
// mxguard/checks/resolver's TXTFunc-compatible LookupTXT fits.
type TXTLookup func(ctx context.Context, name string) ([]string, error)

// Options configures Verify and NewPrefetcher.
type Options struct {
	// Lookup fetches key records. Nil makes every key lookup a temperror:
	// the check never falls back to the machine's resolver.
	Lookup TXTLookup
	// MaxSignatures bounds the signatures verified (RFC 6376 §6.1);
	// 0 means DefaultMaxSignatures.
	MaxSignatures int
	// MinRSABits is the smallest RSA modulus accepted; 0 means
	// DefaultMinRSABits, and a value under it is taken as it (RFC 8301
	// §3.2 is a floor, not a default).
	MinRSABits int
	// Now is the clock for signature expiry (RFC 6376 §3.5, x=); nil means
	// time.Now.
	Now func() time.Time
	// Memory is the budget a Prefetcher reserves the header section it
	// holds from; nil means none (maxHeld alone bounds it). Verify does
	// not use it.
	Memory *membudget.Budget
}

// Signature is the evidence about one DKIM-Signature header field.
type Signature struct {
	Domain    string // d=, the SDID
	Selector  string // s=
	Algorithm string // a=
	Result    string // pass, fail, policy, neutral, temperror, permerror (RFC 8601 §2.7.1)
	Detail    string // why, for people
	KeyBits   int    // RSA modulus size, or 256 for Ed25519; 0 if the key was not fetched or not parsed
	// BodyLength is true when l= is present (RFC 6376 §3.5). Content
	// past the signed length is not signed (RFC 6376 §8.2): when there is
	// some, a signature that verifies is Policy, not Pass.
	BodyLength bool
	// FromSigned is true when h= includes From (RFC 6376 §5.4 requires it).
	FromSigned bool
	// Identifier is i=, or "@" + d= when i= is absent (RFC 6376 §3.5), for
	// the Authentication-Results header.i property (RFC 8601 §2.7.1).
	Identifier string
}

// Result is the evidence about a message.
type Result struct {
	// Result is the summary: pass if any signature passes; otherwise the
	// most telling one, temperror > fail > policy > permerror > neutral;
	// none when the message is unsigned.
	Result string
	// Signatures are in header order, at most MaxSignatures of them, plus
	// one permerror entry "too many signatures" when there were more. The
	// only other entry that is not a signature is the single temperror
	// "internal error" entry that reports a recovered panic.
	Signatures []Signature
}

// Verify checks every DKIM-Signature of msg (header and body as received,
// with CRLF line ends and without SMTP dot-stuffing) and reports the
// evidence. It reads msg to its end unless the message is unsigned or no
// signature needs the body. It never panics on malformed input and never
// returns a word outside the constants above.
//
// The keys are fetched first, normally from the cache the Prefetcher
// warmed while the message arrived, so that a message whose signatures all
// fail before the body (no key, a revoked or short one) is never read past
// its header; then one pass over the body feeds every signature's hash.
func Verify(ctx context.Context, msg io.Reader, o Options) (res Result) {
	o = o.withDefaults()
	// A panic here must not take the proxy down: the Verifier runs this on
	// its own goroutine, out of reach of the policy engine's recover. It
	// becomes temperror, never a pass, and is counted so tests can insist
	// on none.
	defer func() {
		if p := recover(); p != nil {
			panics.Add(1)
			res = Result{Result: Temperror, Signatures: []Signature{{
				Result: Temperror,
				Detail: fmt.Sprintf("dkim: internal error: %v", p),
			}}}
		}
	}()

	// Any read error becomes EOF for the readers below and is kept: the
	// message could not be read to its end, so nothing about it is final.
	src := &guardReader{r: msg}
	br := readers.Get().(*bufio.Reader)
	br.Reset(src)
	defer func() {
		br.Reset(nil)
		readers.Put(br)
	}()
	fields, herr := readHeader(br)
	sigs := signaturesOf(fields)
	if src.err != nil {
		// Signatures after the failure point are unknown, so even a message
		// with none seen so far is temperror, not none.
		r := finish(markAll(sigs, Temperror, "dkim: reading message: "+src.err.Error()), o)
		r.Result = Temperror
		return r
	}
	if len(sigs) == 0 {
		return Result{Result: None}
	}
	if herr != nil {
		return finish(markAll(sigs, Permerror, "dkim: malformed header: "+herr.Error()), o)
	}

	vs := make([]verification, min(len(sigs), o.MaxSignatures))
	for i := range vs {
		vs[i].s = &sigs[i]
		vs[i].p, vs[i].err = parseSig(sigs[i].value)
	}
	keys := fetchKeys(ctx, o.Lookup, vs)
	needBody := false
	for i := range vs {
		if vs[i].err == nil {
			vs[i].checkKey(keys[vs[i].s.keyName], o)
			needBody = needBody || vs[i].s.Result == ""
		} else {
			vs[i].s.Result, vs[i].s.Detail = Permerror, vs[i].err.Error()
		}
	}
	if needBody {
		hashBody(br, vs)
		if src.err != nil {
			return finish(markAll(sigs, Temperror, "dkim: reading message: "+src.err.Error()), o)
		}
		fi := indexFields(fields)
		for i := range vs {
			if vs[i].s.Result == "" {
				vs[i].finish(fi)
			}
		}
	}
	return finish(sigs, o)
}

// readers are the buffered readers Verify reads messages through; a
// verification's only sizeable allocation otherwise.
var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readSize) }}

// readSize is the size of the chunks the body is read and canonicalised in.
const readSize = 16 << 10

// fetchKeys fetches the keys the signatures that passed parseSig name,
// each once, all at once.
func fetchKeys(ctx context.Context, look TXTLookup, vs []verification) map[string]keyResult {
	var names []string
	for _, v := range vs {
		if v.err == nil && !contains(names, v.s.keyName) {
			names = append(names, v.s.keyName)
		}
	}
	keys := make(map[string]keyResult, len(names))
	if len(names) == 1 {
		keys[names[0]] = fetchKey(ctx, look, names[0])
		return keys
	}
	results := make([]keyResult, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() { results[i] = fetchKey(ctx, look, name) })
	}
	wg.Wait()
	for i, name := range names {
		keys[name] = results[i]
	}
	return keys
}

// hashBody reads the body from r to its end and feeds it, canonicalised
// once per canonicalisation, to the hash of every signature still to be
// decided.
func hashBody(r *bufio.Reader, vs []verification) {
	var canons [2]*bodyCanon // simple, relaxed
	for i := range vs {
		v := &vs[i]
		if v.s.Result != "" {
			continue
		}
		k := 0
		if v.p.bodyCanon == relaxed {
			k = 1
		}
		if canons[k] == nil {
			buf := outBufs.Get().(*[]byte)
			defer outBufs.Put(buf)
			canons[k] = &bodyCanon{relaxed: k == 1, out: (*buf)[:0]}
		}
		c := canons[k]
		// Signatures that hash the same octets share the hash.
		for _, h := range c.hashes {
			if h.limit == v.p.length {
				v.body = h
			}
		}
		if v.body == nil {
			v.body = &bodyHash{h: sha256.New(), limit: v.p.length}
			c.hashes = append(c.hashes, v.body)
		}
		v.canon = c
	}
	for {
		// Hash what the reader holds, straight from its buffer.
		if r.Buffered() == 0 {
			if _, err := r.Peek(1); err != nil {
				break // EOF; guardReader keeps any other error
			}
		}
		b, _ := r.Peek(r.Buffered())
		for _, c := range canons {
			if c != nil {
				c.write(b)
			}
		}
		r.Discard(len(b))
	}
	for _, c := range canons {
		if c != nil {
			c.close()
		}
	}
}

// panics counts panics recovered by Verify.
var panics atomic.Int64

// RecoveredPanics returns how many panics Verify has recovered since the
// process started. Anything but zero is a bug.
func RecoveredPanics() int64 { return panics.Load() }

// rank orders the non-pass words for the summary: the most telling wins.
var rank = map[string]int{Neutral: 1, Permerror: 2, Policy: 3, Fail: 4, Temperror: 5}

// summarize gives the summary word for verified signatures.
func summarize(sigs []Signature) string {
	if len(sigs) == 0 {
		return None
	}
	best := Neutral
	for _, s := range sigs {
		if s.Result == Pass {
			return Pass
		}
		if rank[s.Result] > rank[best] {
			best = s.Result
		}
	}
	return best
}

// finish bounds sigs to MaxSignatures, adding the "too many signatures"
// entry, and summarises them.
func finish(sigs []sigField, o Options) Result {
	if len(sigs) == 0 {
		return Result{Result: None}
	}
	n := min(len(sigs), o.MaxSignatures)
	out := make([]Signature, 0, n+1)
	for i := range n {
		out = append(out, sigs[i].Signature)
	}
	if len(sigs) > n {
		out = append(out, Signature{
			Result: Permerror,
			Detail: fmt.Sprintf("dkim: too many signatures: %d, only the first %d verified", len(sigs), n),
		})
	}
	return Result{Result: summarize(out), Signatures: out}
}

// markAll gives every signature the same result.
func markAll(sigs []sigField, result, detail string) []sigField {
	for i := range sigs {
		sigs[i].Result, sigs[i].Detail = result, detail
	}
	return sigs
}

func (o Options) withDefaults() Options {
	if o.MaxSignatures <= 0 {
		o.MaxSignatures = DefaultMaxSignatures
	}
	o.MinRSABits = max(o.MinRSABits, DefaultMinRSABits)
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// guardReader passes reads through, but reports any error as io.EOF and
// keeps the first one in err.
type guardReader struct {
	r   io.Reader
	err error
}

func (g *guardReader) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, io.EOF
	}
	n, err := g.r.Read(p)
	if err != nil && err != io.EOF {
		g.err = err
		return n, io.EOF
	}
	return n, err
}

// stripWhitespace removes all white space, as go-msgauth does to tag values.
func stripWhitespace(s string) string {
	return strings.Join(strings.Fields(s), "")
}
