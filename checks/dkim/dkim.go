// Package dkim is mxguard's DKIM check (RFC 6376, updated by RFC 8301 and
// RFC 8463). It verifies every DKIM-Signature of a message and reports, per
// signature and as a summary, the RFC 8601 §2.7.1 result words, with the
// facts a rule may want to weigh: the key size, whether l= leaves part of the
// body unsigned, whether From is signed.
//
// A check reports evidence; it never decides, and it knows nothing of SMTP
// sessions or rules. The cryptography and canonicalisation are
// github.com/emersion/go-msgauth/dkim; this package adds the key-size floor,
// the DNS error contract, the bound on signatures, streaming, and the
// per-signature facts go-msgauth does not expose.
//
// Policy choices, each with its reason:
//
//   - rsa-sha1 is permerror, not fail. RFC 8301 §3.1 says rsa-sha1 MUST NOT
//     be used for verifying, so a verifier treats it as an unsupported
//     algorithm, which RFC 6376 §6.1.1 makes a PERMFAIL; RFC 8601 §2.7.1
//     keeps "fail" for signatures that were acceptable but did not verify,
//     and an rsa-sha1 signature is never computed at all. go-msgauth agrees.
//   - An RSA key shorter than Options.MinRSABits is fail ("key too small"),
//     even where go-msgauth already gave permerror for it (RFC 8301 §3.2:
//     such signatures MUST NOT be considered valid). The size is the
//     modulus bit length, not go-msgauth's byte-rounded size, so a 1020-bit
//     key does not pass as 1024.
//   - A signature with l= is fail: go-msgauth refuses it because the unsigned
//     tail of the body can be anything (RFC 6376 §8.2). Signature.BodyLength
//     says so, so a rule can tell it from a broken signature.
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
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	msgauth "github.com/emersion/go-msgauth/dkim"
)

// Result words, RFC 8601 §2.7.1.
const (
	None      = "none"      // the message carries no DKIM-Signature
	Pass      = "pass"      // the signature verified
	Fail      = "fail"      // the signature did not verify, or was refused (key too small, l=)
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

// Options configures Verify and NewVerifier.
type Options struct {
	// Lookup fetches key records. Nil makes every key lookup a temperror:
	// the check never falls back to the machine's resolver.
	Lookup TXTLookup
	// MaxSignatures bounds the signatures verified (RFC 6376 §6.1);
	// 0 means DefaultMaxSignatures.
	MaxSignatures int
	// MinRSABits is the smallest RSA modulus accepted; 0 means
	// DefaultMinRSABits. go-msgauth refuses keys under 1024 bits whatever
	// this says, so a smaller value does not lower that floor.
	MinRSABits int
	// Now is the clock for signature expiry (RFC 6376 §3.5, x=); nil means
	// time.Now. go-msgauth also checks x= against the wall clock, so Now
	// can make a signature expire early but cannot revive an expired one.
	Now func() time.Time
}

// Signature is the evidence about one DKIM-Signature header field.
type Signature struct {
	Domain    string // d=, the SDID
	Selector  string // s=
	Algorithm string // a=
	Result    string // pass, fail, neutral, temperror, permerror (RFC 8601 §2.7.1)
	Detail    string // why, for people
	KeyBits   int    // RSA modulus size, or 256 for Ed25519; 0 if the key was not fetched or not parsed
	// BodyLength is true when l= is present: the body after the signed
	// length can be anything (RFC 6376 §8.2).
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
	// most telling one, temperror > fail > permerror > neutral; none when
	// the message is unsigned.
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
func Verify(ctx context.Context, msg io.Reader, o Options) (res Result) {
	o = o.withDefaults()
	// A panic here must not take the proxy down: the Verifier runs this on
	// its own goroutine, out of reach of the policy engine's recover. It
	// becomes temperror, never a pass, and is counted so tests can insist
	// on none. (Panics on go-msgauth's own goroutines cannot be caught.)
	defer func() {
		if p := recover(); p != nil {
			panics.Add(1)
			res = Result{Result: Temperror, Signatures: []Signature{{
				Result: Temperror,
				Detail: fmt.Sprintf("dkim: internal error: %v", p),
			}}}
		}
	}()

	// The source is read through a guard that turns any read error into
	// EOF: go-msgauth's parallel path leaks its goroutines when the reader
	// fails mid-body, so it must only ever see a clean end. The error is
	// kept, and every signature becomes temperror below.
	src := &guardReader{r: msg}

	// Read the header ourselves, with the same code path as go-msgauth, to
	// learn the signatures' tags; then hand go-msgauth the recorded bytes
	// followed by the rest of the source, so the message is read once.
	rec := &recordReader{r: src}
	fields, herr := readHeader(bufio.NewReader(rec))
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

	keys := &keyCapture{}
	vopts := &msgauth.VerifyOptions{
		LookupTXT:        keys.lookupFunc(ctx, o.Lookup),
		MaxVerifications: o.MaxSignatures,
	}
	verifs, err := msgauth.VerifyWithOptions(&thenReader{first: bytes.NewReader(rec.buf), then: src}, vopts)
	if src.err != nil {
		return finish(markAll(sigs, Temperror, "dkim: reading message: "+src.err.Error()), o)
	}
	unexpected := err != nil && !errors.Is(err, msgauth.ErrTooManySignatures)

	n := min(len(sigs), o.MaxSignatures)
	for i := range n {
		s := &sigs[i].Signature
		if i >= len(verifs) || verifs[i] == nil {
			// go-msgauth gave up before producing this verification.
			s.Result, s.Detail = Temperror, "dkim: verification interrupted"
			if unexpected {
				s.Detail += ": " + err.Error()
			}
			continue
		}
		v := verifs[i]
		if unexpected && v.Err == nil {
			// On an unexpected error go-msgauth's parallel path clears the
			// Err of the verification that failed, so a nil Err cannot be
			// trusted as a pass here.
			s.Result, s.Detail = Temperror, "dkim: verification interrupted: "+err.Error()
			continue
		}
		s.Result, s.Detail = classify(v.Err)
		key, kerr := keys.key(sigs[i].keyName)
		if kerr == nil {
			s.KeyBits = key.bits
		}
		applyPolicy(s, v, key, kerr, o)
	}
	return finish(sigs, o)
}

// panics counts panics recovered by Verify.
var panics atomic.Int64

// RecoveredPanics returns how many panics Verify has recovered since the
// process started. Anything but zero is a bug.
func RecoveredPanics() int64 { return panics.Load() }

// classify maps a go-msgauth verification error to a result word.
func classify(err error) (string, string) {
	switch {
	case err == nil:
		return Pass, ""
	case msgauth.IsTempFail(err):
		return Temperror, err.Error()
	case msgauth.IsPermFail(err):
		return Permerror, err.Error()
	default:
		// go-msgauth's remaining typed error is its unexported failError:
		// bad body hash, bad signature, l= present. Unexpected errors
		// were handled by the caller.
		return Fail, err.Error()
	}
}

// applyPolicy adds mxguard's rules on top of go-msgauth's verdict.
func applyPolicy(s *Signature, v *msgauth.Verification, key keyInfo, kerr error, o Options) {
	if s.Result == Temperror {
		return
	}
	// RFC 8301 §3.2: signatures with RSA keys under 1024 bits MUST NOT be
	// considered valid; the operator may raise the floor.
	if kerr == nil && key.algo == "rsa" && key.bits < o.MinRSABits {
		s.Result = Fail
		s.Detail = fmt.Sprintf("dkim: key too small: rsa %d bits, minimum %d", key.bits, o.MinRSABits)
		return
	}
	if s.Result != Pass {
		return
	}
	if kerr != nil {
		// Cannot happen while keyCapture parses the record go-msgauth
		// used; if it ever does, the size floor could not be enforced, so
		// this must not pass.
		s.Result, s.Detail = Temperror, "dkim: internal: "+kerr.Error()
		return
	}
	// RFC 6376 §3.5 x=: a signature past its expiry may be considered
	// invalid; go-msgauth does the same with PERMFAIL.
	if !v.Expiration.IsZero() && o.Now().After(v.Expiration) {
		s.Result = Permerror
		s.Detail = "dkim: signature has expired at " + v.Expiration.UTC().Format(time.RFC3339)
		return
	}
	s.Detail = fmt.Sprintf("dkim: signature verified (%s, %d-bit key)", key.algo, key.bits)
}

// rank orders the non-pass words for the summary: the most telling wins.
var rank = map[string]int{Neutral: 1, Permerror: 2, Fail: 3, Temperror: 4}

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
	if o.MinRSABits <= 0 {
		o.MinRSABits = DefaultMinRSABits
	}
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

// recordReader keeps a copy of every byte read through it.
type recordReader struct {
	r   io.Reader
	buf []byte
}

func (rr *recordReader) Read(p []byte) (int, error) {
	n, err := rr.r.Read(p)
	rr.buf = append(rr.buf, p[:n]...)
	return n, err
}

// stripWhitespace removes all white space, as go-msgauth does to tag values.
func stripWhitespace(s string) string {
	return strings.Join(strings.Fields(s), "")
}

// thenReader reads first, then the rest. It is io.MultiReader without
// WriteTo, whose fresh 32 KiB copy buffer on every call was most of the
// memory a verification allocated: go-msgauth reads through a bufio.Reader,
// which uses its own buffer when the source has no WriteTo.
type thenReader struct {
	first *bytes.Reader
	then  io.Reader
}

func (r *thenReader) Read(p []byte) (int, error) {
	if r.first.Len() > 0 {
		return r.first.Read(p)
	}
	return r.then.Read(p)
}
