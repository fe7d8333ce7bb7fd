package dkim

import (
	"bytes"
	"context"
	"crypto"
	"strings"
	"testing"

	msgauth "github.com/emersion/go-msgauth/dkim"
)

// TestSignerAgreesWithGoMsgauth anchors the test signer: what it signs
// without l= go-msgauth verifies, for every canonicalisation and key type.
func TestSignerAgreesWithGoMsgauth(t *testing.T) {
	e := newEnv(t)
	k := getKeys(t)
	msg := messageWithWhitespace()
	for _, c := range []struct{ hc, bc string }{{"simple", "simple"}, {"simple", "relaxed"}, {"relaxed", "simple"}, {"relaxed", "relaxed"}} {
		for sel, key := range map[string]crypto.Signer{"ed": k.ed, "rsa2048": k.rsa2048} {
			signed := testSign(t, msg, key, sel, signOpts{HeaderCanon: c.hc, BodyCanon: c.bc, BodyLength: noL})
			verifs, err := msgauth.VerifyWithOptions(bytes.NewReader(signed), &msgauth.VerifyOptions{
				LookupTXT: func(name string) ([]string, error) { return e.res.LookupTXT(context.Background(), name) },
			})
			if err != nil || len(verifs) != 1 || verifs[0].Err != nil {
				t.Errorf("%s/%s %s: go-msgauth says %v %v", c.hc, c.bc, sel, err, verifs)
			}
		}
	}
}

// messageWithWhitespace has what the canonicalisations treat differently:
// folded fields, runs of spaces and tabs, trailing white space, and empty
// lines at the end of the body.
func messageWithWhitespace() []byte {
	return []byte("From: Alice  <alice@example.org> \r\n" +
		"To:\tBob <bob@example.net>,\r\n\t carol@example.net\r\n" +
		"Subject:  quarterly \t figures\r\n" +
		"Date: Mon, 02 Jan 2006 15:04:05 +0000\r\n" +
		"Message-ID: <1234@example.org>\r\n" +
		"\r\n" +
		"  Dear Bob,\t \r\n" +
		"\r\n" +
		"the  figures are\tin.   \r\n" +
		"\t\r\n" +
		"\r\n")
}

// TestIdentifierDomain: RFC 6376 §3.5 makes i=' domain d= or a subdomain
// of it, and domain names compare without regard to case (RFC 4343).
func TestIdentifierDomain(t *testing.T) {
	e := newEnv(t)
	k := getKeys(t)
	msg := baseMessage(500)
	for _, c := range []struct {
		name, id, want, detail string
	}{
		{"same case", "alice@example.org", Pass, ""},
		{"local part and domain in capitals", "Alice@Example.ORG", Pass, ""},
		{"domain only, capitals", "@EXAMPLE.ORG", Pass, ""},
		{"subdomain, capitals", "bob@Mail.Example.Org", Pass, ""},
		{"another domain", "alice@example.net", Permerror, "domain mismatch"},
		{"suffix but not a subdomain", "alice@badexample.org", Permerror, "domain mismatch"},
		{"no at sign", "example.org", Permerror, "domain mismatch"},
	} {
		t.Run(c.name, func(t *testing.T) {
			signed := sign(t, msg, k.ed, "ed", func(o *msgauth.SignOptions) { o.Identifier = c.id })
			r := Verify(testCtx(t), bytes.NewReader(signed), e.opts())
			if len(r.Signatures) != 1 || r.Signatures[0].Result != c.want || !strings.Contains(r.Signatures[0].Detail, c.detail) {
				t.Fatalf("i=%s: got %s, want %s (%q)", c.id, formatResult(r), c.want, c.detail)
			}
			if got := r.Signatures[0].Identifier; got != c.id {
				t.Errorf("Identifier %q, want %q as written", got, c.id)
			}
		})
	}
}

// TestSubdomainFlag: a key record with t=s (RFC 6376 §3.6.1) accepts only
// signatures whose i= domain is d= itself, in any case.
func TestSubdomainFlag(t *testing.T) {
	e := newEnv(t)
	k := getKeys(t)
	msg := baseMessage(500)
	for _, c := range []struct {
		name, sel, id, want string
	}{
		{"t=s, i= in a subdomain", "strict", "alice@mail.example.org", Permerror},
		{"t=s, i= is d=", "strict", "alice@example.org", Pass},
		{"t=s, i= is d= in capitals", "strict", "alice@EXAMPLE.org", Pass},
		{"t=s, no i=", "strict", "", Pass},
		{"t=y:s with spaces, i= in a subdomain", "strictrsa", "@mail.example.org", Permerror},
		{"t=y, i= in a subdomain", "testing", "alice@mail.example.org", Pass},
		{"no t=, i= in a subdomain", "ed", "alice@mail.example.org", Pass},
	} {
		t.Run(c.name, func(t *testing.T) {
			var key crypto.Signer = k.ed
			if c.sel == "strictrsa" {
				key = k.rsa2048
			}
			signed := sign(t, msg, key, c.sel, func(o *msgauth.SignOptions) { o.Identifier = c.id })
			r := Verify(testCtx(t), bytes.NewReader(signed), e.opts())
			if len(r.Signatures) != 1 || r.Signatures[0].Result != c.want {
				t.Fatalf("got %s, want %s", formatResult(r), c.want)
			}
			if c.want == Permerror && !strings.Contains(r.Signatures[0].Detail, "t=s") {
				t.Errorf("detail %q does not name t=s", r.Signatures[0].Detail)
			}
		})
	}
}

// TestBodyLength: l= (RFC 6376 §3.4.5, §3.5) signs the first l octets of
// the canonicalised body. When they are the whole body the signature
// verifies like any other, and the fact says l= was there; content after
// them is not signed (RFC 6376 §8.2), so a signature that verifies over
// its l octets of a longer body is policy (RFC 8601 §2.7.1: verified, not
// accepted), never pass, and DMARC, counting only pass, ignores it.
func TestBodyLength(t *testing.T) {
	e := newEnv(t)
	k := getKeys(t)
	msg := messageWithWhitespace()
	appended := func(b []byte) []byte {
		return append(bytes.Clone(b), "\r\nP.S. wire the money to account 12345678.\r\n"...)
	}
	withL := func(key crypto.Signer, sel, hc, bc string, l int) []byte {
		return testSign(t, msg, key, sel, signOpts{HeaderCanon: hc, BodyCanon: bc, BodyLength: l})
	}
	whole := withL(k.ed, "ed", "relaxed", "relaxed", wholeBody)
	for _, c := range []struct {
		name, want, detail string
		msg                []byte
	}{
		{"whole body, relaxed", Pass, "signature verified", whole},
		{"whole body, simple", Pass, "signature verified", withL(k.rsa2048, "rsa2048", "simple", "simple", wholeBody)},
		{"whole body, rsa relaxed/simple", Pass, "signature verified", withL(k.rsa2048, "rsa2048", "relaxed", "simple", wholeBody)},
		// Empty lines at the end are not part of the canonical body, so
		// adding some changes nothing signed.
		{"whole body, empty lines added", Pass, "signature verified", append(bytes.Clone(whole), "\r\n\r\n"...)},
		{"content appended", Policy, "not signed", appended(whole)},
		{"content appended, simple", Policy, "not signed", appended(withL(k.rsa2048, "rsa2048", "simple", "simple", wholeBody))},
		{"part of the body signed", Policy, "not signed", withL(k.ed, "ed", "relaxed", "relaxed", 10)},
		{"l=0", Policy, "not signed", withL(k.ed, "ed", "relaxed", "relaxed", 0)},
		{"signed part changed", Fail, "body hash did not verify", bytes.Replace(appended(whole), []byte("Dear"), []byte("Dead"), 1)},
		{"body cut short", Fail, "body hash did not verify", bytes.Replace(whole, []byte("in."), []byte("i"), 1)},
		{"header changed", Fail, "signature did not verify", bytes.Replace(appended(whole), []byte("quarterly"), []byte("annual"), 1)},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := Verify(testCtx(t), bytes.NewReader(c.msg), e.opts())
			if len(r.Signatures) != 1 {
				t.Fatalf("got %s", formatResult(r))
			}
			s := r.Signatures[0]
			if s.Result != c.want || r.Result != c.want || !s.BodyLength || !strings.Contains(s.Detail, c.detail) {
				t.Errorf("got %s, want %s with body_length and detail %q", formatResult(r), c.want, c.detail)
			}
			if c.want == Pass || c.want == Policy {
				if s.KeyBits == 0 {
					t.Errorf("verified without a key size: %+v", s)
				}
			}
		})
	}
}

// TestBodyLengthSyntax: l= is 1 to 76 digits (RFC 6376 §3.5); anything
// else is a malformed signature, and a count past any body is just long.
func TestBodyLengthSyntax(t *testing.T) {
	e := newEnv(t)
	k := getKeys(t)
	signed := testSign(t, baseMessage(300), k.ed, "ed", signOpts{BodyLength: wholeBody})
	for _, c := range []struct{ l, want, detail string }{
		{"-1", Permerror, "malformed body length"},
		{"0x10", Permerror, "malformed body length"},
		{"", Permerror, "malformed body length"},
		{strings.Repeat("9", 77), Permerror, "malformed body length"},
		// A count past the body is not an error of syntax; the body hash
		// is over what there is, and here no longer matches the b= made
		// over the signed l=.
		{strings.Repeat("9", 76), Fail, "signature did not verify"},
	} {
		msg := editSignature(t, signed, func(f string) string {
			i := strings.Index(f, "l=")
			j := i + strings.Index(f[i:], ";")
			return f[:i] + "l=" + c.l + f[j:]
		})
		r := Verify(testCtx(t), bytes.NewReader(msg), e.opts())
		if len(r.Signatures) != 1 || r.Signatures[0].Result != c.want || !strings.Contains(r.Signatures[0].Detail, c.detail) {
			t.Errorf("l=%s: got %s, want %s (%q)", c.l, formatResult(r), c.want, c.detail)
		}
	}
}

// TestOverSigning: h= may name a field more often than it occurs (RFC 6376
// §5.4.2, §8.15): each name picks the next instance from the bottom, and
// one that finds none adds nothing, so a From added later breaks the
// signature.
func TestOverSigning(t *testing.T) {
	e := newEnv(t)
	k := getKeys(t)
	signed := sign(t, baseMessage(300), k.ed, "ed", func(o *msgauth.SignOptions) {
		o.HeaderKeys = []string{"From", "Subject", "From", "To", "Subject", "Reply-To"}
	})
	for _, c := range []struct {
		name string
		msg  []byte
		want string
	}{
		{"as signed", signed, Pass},
		{"a From added at the top", append([]byte("From: mallory@example.net\r\n"), signed...), Fail},
		{"a Subject added at the bottom", bytes.Replace(signed, []byte("\r\n\r\n"), []byte("\r\nSubject: urgent\r\n\r\n"), 1), Fail},
		{"a Reply-To added", append([]byte("Reply-To: mallory@example.net\r\n"), signed...), Fail},
		{"an unsigned field added", append([]byte("X-Note: hello\r\n"), signed...), Pass},
	} {
		r := Verify(testCtx(t), bytes.NewReader(c.msg), e.opts())
		if len(r.Signatures) != 1 || r.Signatures[0].Result != c.want {
			t.Errorf("%s: got %s, want %s", c.name, formatResult(r), c.want)
		}
	}
}
