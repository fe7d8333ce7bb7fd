package dkim

import (
	"crypto"
	"testing"

	"mxguard/checks/dkim/dkimtest"
)

// Body lengths testSign understands besides a plain count.
const (
	noL       = -1 // no l= tag
	wholeBody = -2 // l= the length of the canonicalised body
)

// signOpts are testSign's choices; the zero value of a string is the
// common case (d=example.org, relaxed/relaxed, no i=).
type signOpts struct {
	Domain      string
	Identifier  string // i=; "" for none
	HeaderCanon string // "simple" or "relaxed"
	BodyCanon   string
	BodyLength  int // l=: noL, wholeBody, or a count of octets
}

// testSign adds a DKIM-Signature made with key under selector to msg, a
// message with CRLF line ends, with dkimtest's signer, which writes l=
// (go-msgauth's never does) and shares no code with the verifier.
func testSign(tb testing.TB, msg []byte, key crypto.Signer, selector string, o signOpts) []byte {
	tb.Helper()
	do := dkimtest.Options{Domain: o.Domain, Selector: selector, Identifier: o.Identifier,
		HeaderCanon: o.HeaderCanon, BodyCanon: o.BodyCanon, Headers: signedHeaders}
	if do.Domain == "" {
		do.Domain = testDomain
	}
	switch {
	case o.BodyLength == wholeBody:
		do.BodyLength = dkimtest.WholeBody
	case o.BodyLength >= 0:
		do.BodyLength = dkimtest.Octets(o.BodyLength)
	}
	signed, err := dkimtest.Sign(msg, key, do)
	if err != nil {
		tb.Fatal(err)
	}
	return signed
}
