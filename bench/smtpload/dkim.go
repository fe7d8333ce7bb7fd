package main

import (
	"crypto/ed25519"
	"crypto/sha256"
	"io"
	"strings"

	"github.com/emersion/go-msgauth/dkim"
)

// benchKey is the DKIM key of the benchmarks, derived from a fixed seed so
// that testdata/zones/bench.zone can publish its public half:
// bench._domainkey.sender.test (key_test.go holds the two together).
var benchKey = ed25519.NewKeyFromSeed(func() []byte {
	seed := sha256.Sum256([]byte("mxguard benchmark DKIM key"))
	return seed[:]
}())

// dkimSignature returns the DKIM-Signature field, CRLF included, for the
// message made of header (ending in its blank line) and body, signed for
// the domain of o.from. Only the signature is built: the message is hashed,
// not copied.
func dkimSignature(o options, header string, body []byte) (string, error) {
	domain := o.from[strings.LastIndexByte(o.from, '@')+1:]
	s, err := dkim.NewSigner(&dkim.SignOptions{
		Domain:     domain,
		Selector:   "bench",
		Signer:     benchKey,
		HeaderKeys: []string{"From", "To", "Date", "Message-ID", "Subject"},
	})
	if err != nil {
		return "", err
	}
	if _, err := io.WriteString(s, header); err != nil {
		return "", err
	}
	if _, err := s.Write(body); err != nil {
		return "", err
	}
	if err := s.Close(); err != nil {
		return "", err
	}
	return s.Signature(), nil
}
