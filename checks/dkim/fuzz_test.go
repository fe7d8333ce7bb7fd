package dkim

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	msgauth "github.com/emersion/go-msgauth/dkim"

	"mxguard/internal/mailhdr"
)

var words = map[string]bool{Pass: true, Fail: true, Policy: true, Neutral: true, Temperror: true, Permerror: true}

// FuzzVerify feeds arbitrary messages to Verify against a fixed zone. It
// must never panic, never give a word outside RFC 8601 §2.7.1's, keep its
// bound on signatures, agree with the Prefetcher (a message it calls
// unsigned has no signature for Verify either), see the same signatures
// as go-msgauth, and agree with its verdicts where it is not wrong. The committed corpus under testdata/fuzz holds
// messages signed with the fixed-seed Ed25519 key, so they still verify.
func FuzzVerify(f *testing.F) {
	e := newEnv(f)
	k := getKeys(f)
	msg := baseMessage(300)
	ed := sign(f, msg, k.ed, "ed")
	f.Add(msg)
	f.Add(ed)
	f.Add(sign(f, msg, k.rsa2048, "rsa2048"))
	f.Add(sign(f, ed, k.rsa1024, "rsa1024"))
	f.Add(sign(f, msg, k.ed, "missing"))
	f.Add(editSignature(f, ed, func(s string) string { return strings.Replace(s, "DKIM-Signature:", "DKIM-Signature: l=3;", 1) }))
	f.Add([]byte("DKIM-Signature: v=1; a=ed25519-sha256; d=example.org; s=ed; h=from; bh=; b=\r\n\r\n"))
	f.Add([]byte("DKIM-Signature: ;;;==;\r\n\tx\r\n"))
	// The canonicalisations, and l= over all of the body or part of it.
	ws := messageWithWhitespace()
	for _, c := range []string{"simple", "relaxed"} {
		f.Add(testSign(f, ws, k.ed, "ed", signOpts{HeaderCanon: c, BodyCanon: c, BodyLength: noL}))
		f.Add(testSign(f, ws, k.ed, "ed", signOpts{HeaderCanon: c, BodyCanon: c, BodyLength: wholeBody}))
		f.Add(testSign(f, ws, k.ed, "ed", signOpts{HeaderCanon: c, BodyCanon: c, BodyLength: 12}))
	}

	o := e.opts()
	o.MaxSignatures = 3
	f.Fuzz(func(t *testing.T, msg []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		before := RecoveredPanics()
		defer func() {
			if n := RecoveredPanics() - before; n != 0 {
				t.Fatalf("%d panics recovered", n)
			}
		}()
		r := Verify(ctx, bytes.NewReader(msg), o)
		checkInvariants(t, r, o.MaxSignatures)

		// The prefetcher reads the message as it arrives; Verify reads it
		// as the policy engine hands it over, with the empty line a
		// malformed header section lacks (mailhdr).
		p := NewPrefetcher(ctx, o)
		p.Write(msg[:len(msg)/2])
		p.Write(msg[len(msg)/2:])
		if p.Unsigned() {
			if rd := Verify(ctx, bytes.NewReader(delivered(msg)), o); !reflect.DeepEqual(rd, Result{Result: None}) {
				t.Errorf("the prefetcher calls it unsigned, Verify gives %s", formatResult(rd))
			}
		}
		p.Stop()
		assertParity(t, msg)
		assertAgreesWithGoMsgauth(t, msg, r, e)
	})
}

// assertAgreesWithGoMsgauth fails t if go-msgauth verifies a signature
// this package does not, or the other way round, outside the places where
// they differ on purpose: l= (go-msgauth refuses it), i= (go-msgauth
// compares by case and takes an i= without @), the key's t=s (go-msgauth
// ignores it), the 1020-bit key (go-msgauth rounds to bytes), and bare
// CRs (go-msgauth takes one for white space; it is an ordinary octet).
func assertAgreesWithGoMsgauth(t *testing.T, msg []byte, r Result, e *env) {
	t.Helper()
	if bytes.Contains(bytes.ReplaceAll(msg, []byte("\r\n"), nil), []byte("\r")) {
		return
	}
	fields, _ := readHeader(newBufReader(msg))
	sigs := signaturesOf(fields)
	verifs, err := msgauth.VerifyWithOptions(bytes.NewReader(msg), &msgauth.VerifyOptions{
		LookupTXT:        func(name string) ([]string, error) { return e.res.LookupTXT(context.Background(), name) },
		MaxVerifications: 3,
	})
	if err != nil && !errors.Is(err, msgauth.ErrTooManySignatures) {
		return
	}
	for i, v := range verifs {
		if i >= len(r.Signatures) || i >= len(sigs) {
			break
		}
		ours, theirs := r.Signatures[i].Result, v.Err == nil
		if theirs == (ours == Pass) || sigs[i].BodyLength || sigs[i].Selector == "rsa1020" ||
			strings.HasPrefix(sigs[i].Selector, "strict") || sigs[i].Identifier != "@"+sigs[i].Domain {
			continue
		}
		t.Errorf("signature %d: go-msgauth says %v, we say %s (%s)", i, v.Err, ours, r.Signatures[i].Detail)
	}
}

// delivered is msg as the engine's view (policy/registry.go) hands it to Verify: with an
// empty line where mailhdr ends a malformed header section.
func delivered(msg []byte) []byte {
	split := mailhdr.Find(msg)
	if !split.Malformed {
		return msg
	}
	return slices.Concat(msg[:split.End], []byte("\r\n"), msg[split.Body:])
}

// checkInvariants fails t if r is not a well-formed Result.
func checkInvariants(t *testing.T, r Result, max int) {
	t.Helper()
	if r.Result != None && !words[r.Result] {
		t.Fatalf("summary %q is not a result word", r.Result)
	}
	if len(r.Signatures) > max+1 {
		t.Fatalf("%d signatures reported, bound %d", len(r.Signatures), max)
	}
	for _, s := range r.Signatures {
		if !words[s.Result] {
			t.Fatalf("signature result %q is not a result word", s.Result)
		}
		if (s.Result == Pass || s.Result == Policy) && (s.KeyBits == 0 || !s.FromSigned) {
			t.Fatalf("%s without the facts a verified signature has: %+v", s.Result, s)
		}
		if s.Result == Policy && !s.BodyLength {
			t.Fatalf("policy without l=: %+v", s)
		}
	}
	if len(r.Signatures) > 0 && r.Result != summarize(r.Signatures) {
		t.Fatalf("summary %q does not follow from %s", r.Result, formatResult(r))
	}
	if r.Result == None && len(r.Signatures) != 0 {
		t.Fatalf("none with signatures: %s", formatResult(r))
	}
}

// TestFuzzCorpusVerifies keeps the committed seeds meaningful: they were
// signed with the fixed-seed Ed25519 key and must still pass, so the fuzzer
// starts from messages that reach the signature check.
func TestFuzzCorpusVerifies(t *testing.T) {
	e := newEnv(t)
	for _, name := range []string{"ed25519-pass", "ed25519-two-signatures"} {
		b, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzVerify", name))
		if err != nil {
			t.Fatal(err)
		}
		q, ok := strings.CutPrefix(strings.TrimSpace(string(b)), "go test fuzz v1\n[]byte(")
		if !ok {
			t.Fatalf("%s: not a fuzz corpus file", name)
		}
		msg, err := strconv.Unquote(strings.TrimSuffix(q, ")"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if r := Verify(testCtx(t), strings.NewReader(msg), e.opts()); r.Result != Pass {
			t.Errorf("%s: %s", name, formatResult(r))
		}
	}
}
