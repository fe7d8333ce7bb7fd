// Package dkimtest signs messages for tests with what go-msgauth's signer
// cannot write, l= above all. It is written from RFC 6376 alone, over
// whole strings, and shares no code with mxguard's verifier
// (mxguard/checks/dkim), so that a mistake in the verifier's streaming
// canonicalisation cannot hide behind the same mistake here; checks/dkim's
// TestSignerAgreesWithGoMsgauth anchors it to go-msgauth's verifier.
package dkimtest

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// BodyLength is what Sign writes as l= (RFC 6376 §3.5); the zero value
// writes none.
type BodyLength struct {
	set, whole bool
	n          int
}

// WholeBody makes l= the length of the canonical body.
var WholeBody = BodyLength{set: true, whole: true}

// Octets makes l= n, which must not exceed the canonical body.
func Octets(n int) BodyLength { return BodyLength{set: true, n: n} }

// Options are Sign's choices.
type Options struct {
	Domain      string // d=, required
	Selector    string // s=, required
	Identifier  string // i=; "" for none
	HeaderCanon string // "simple" or "relaxed" (the default)
	BodyCanon   string
	BodyLength  BodyLength
	Headers     []string // h=, required: the fields to sign, From among them
}

// Sign returns msg, a message with CRLF line ends, with a DKIM-Signature
// made with key (*rsa.PrivateKey for rsa-sha256, ed25519.PrivateKey for
// ed25519-sha256) added at the top.
func Sign(msg []byte, key crypto.Signer, o Options) ([]byte, error) {
	if o.Domain == "" || o.Selector == "" || len(o.Headers) == 0 {
		return nil, errors.New("dkimtest: Domain, Selector and Headers are required")
	}
	if o.HeaderCanon == "" {
		o.HeaderCanon = "relaxed"
	}
	if o.BodyCanon == "" {
		o.BodyCanon = "relaxed"
	}
	head, body, ok := strings.Cut(string(msg), "\r\n\r\n")
	if !ok {
		return nil, errors.New("dkimtest: the message has no body")
	}
	head += "\r\n"

	cbody := CanonBody(body, o.BodyCanon)
	signed := cbody
	if o.BodyLength.set {
		n := o.BodyLength.n
		if o.BodyLength.whole {
			n = len(cbody)
		}
		if n < 0 || n > len(cbody) {
			return nil, fmt.Errorf("dkimtest: l=%d is past the canonical body (%d octets)", n, len(cbody))
		}
		signed = cbody[:n]
	}
	bh := sha256.Sum256([]byte(signed))

	algo := "rsa-sha256"
	if _, ok := key.Public().(ed25519.PublicKey); ok {
		algo = "ed25519-sha256"
	}
	tags := []string{"v=1", "a=" + algo, "c=" + o.HeaderCanon + "/" + o.BodyCanon, "d=" + o.Domain, "s=" + o.Selector}
	if o.Identifier != "" {
		tags = append(tags, "i="+o.Identifier)
	}
	if o.BodyLength.set {
		tags = append(tags, fmt.Sprintf("l=%d", len(signed)))
	}
	tags = append(tags, "h="+strings.Join(o.Headers, ":"), "bh="+base64.StdEncoding.EncodeToString(bh[:]))
	// Folded before b=, as signers do: simple header canonicalisation
	// must keep the fold.
	field := "DKIM-Signature: " + strings.Join(tags, "; ") + ";\r\n\tb="

	// RFC 6376 §5.4.2: each named field once, from the bottom up.
	fs := fields(head)
	used := make([]bool, len(fs))
	var data strings.Builder
	for _, name := range o.Headers {
		for i := len(fs) - 1; i >= 0; i-- {
			n, _, _ := strings.Cut(fs[i], ":")
			if !used[i] && strings.EqualFold(strings.TrimRight(n, " \t"), name) {
				used[i] = true
				data.WriteString(CanonHeader(fs[i], o.HeaderCanon))
				break
			}
		}
	}
	// RFC 6376 §3.7: the signature field last, b= empty, no final CRLF.
	data.WriteString(strings.TrimSuffix(CanonHeader(field+"\r\n", o.HeaderCanon), "\r\n"))
	digest := sha256.Sum256([]byte(data.String()))

	var sig []byte
	switch k := key.(type) {
	case *rsa.PrivateKey:
		var err error
		if sig, err = rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, digest[:]); err != nil {
			return nil, fmt.Errorf("dkimtest: %w", err)
		}
	case ed25519.PrivateKey:
		sig = ed25519.Sign(k, digest[:]) // RFC 8463 §3: over the SHA-256 digest
	default:
		return nil, fmt.Errorf("dkimtest: key type %T", key)
	}
	return []byte(field + base64.StdEncoding.EncodeToString(sig) + "\r\n" + string(msg)), nil
}

// fields splits a header section (ending in CRLF) into its fields, each
// with its continuation lines and its final CRLF.
func fields(head string) []string {
	var out []string
	for _, line := range strings.SplitAfter(head, "\r\n") {
		switch {
		case line == "":
		case (line[0] == ' ' || line[0] == '\t') && len(out) > 0:
			out[len(out)-1] += line
		default:
			out = append(out, line)
		}
	}
	return out
}

// CanonHeader is RFC 6376 §3.4.1 (simple) and §3.4.2 (relaxed) for one
// field: its name, value, continuation lines and final CRLF.
func CanonHeader(f, canon string) string {
	if canon == "simple" {
		return f
	}
	name, value, _ := strings.Cut(f, ":")
	value = strings.ReplaceAll(value, "\r\n", "") // unfold
	return strings.ToLower(strings.TrimRight(name, " \t")) + ":" + collapseWSP(value, true) + "\r\n"
}

// CanonBody is RFC 6376 §3.4.3 (simple) and §3.4.4 (relaxed) for a body
// with CRLF line ends.
func CanonBody(body, canon string) string {
	lines := strings.Split(body, "\r\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1] // the body ended with CRLF
	}
	if canon == "relaxed" {
		for i, l := range lines {
			lines[i] = collapseWSP(l, false)
		}
	}
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) == 0 {
		if canon == "simple" {
			return "\r\n"
		}
		return ""
	}
	return strings.Join(lines, "\r\n") + "\r\n"
}

// collapseWSP turns every run of spaces and tabs into one space and drops
// it at the end (and, for a header value, at the start).
func collapseWSP(s string, trimStart bool) string {
	var b strings.Builder
	wsp := false
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == ' ' || c == '\t' {
			wsp = true
		} else {
			if wsp && (b.Len() > 0 || !trimStart) {
				b.WriteByte(' ')
			}
			wsp = false
			b.WriteByte(c)
		}
	}
	return b.String()
}
