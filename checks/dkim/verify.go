package dkim

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"strings"
	"time"
)

// verification is one signature on its way through Verify. Its result is
// in s.Result, "" while it still needs the body.
type verification struct {
	s     *sigField
	p     sigParams
	err   error // from parseSig: the signature is permerror
	key   pubKey
	canon *bodyCanon // the canonicalisation of the body it uses
	body  *bodyHash  // its hash of that body
}

// decide gives the signature its result.
func (v *verification) decide(result, detail string) {
	v.s.Result, v.s.Detail = result, detail
}

// checkKey applies the key record to the signature (RFC 6376 §6.1.2), and
// the checks that need no body. It leaves the result "" when the body
// is to decide.
func (v *verification) checkKey(kr keyResult, o Options) {
	if kr.result != "" {
		v.decide(kr.result, kr.detail)
		return
	}
	k := kr.key
	v.key, v.s.KeyBits = k, k.bits
	// RFC 8301 §3.2: signatures with RSA keys under 1024 bits MUST NOT be
	// considered valid; the operator may raise the floor.
	if k.algo == "rsa" && k.bits < o.MinRSABits {
		v.decide(Fail, fmt.Sprintf("dkim: key too small: rsa %d bits, minimum %d", k.bits, o.MinRSABits))
		return
	}
	p := v.p
	if k.hashes != nil && !contains(k.hashes, p.hashAlgo) {
		v.decide(Permerror, "dkim: inappropriate hash algorithm") // RFC 6376 §6.1.2, key h=
		return
	}
	switch p.hashAlgo {
	case "sha256":
	case "sha1":
		// RFC 8301 §3.1: rsa-sha1 MUST NOT be used for verifying.
		v.decide(Permerror, "dkim: hash algorithm too weak: sha1")
		return
	default:
		v.decide(Permerror, "dkim: unsupported hash algorithm")
		return
	}
	if p.keyAlgo != k.algo {
		v.decide(Permerror, "dkim: inappropriate key algorithm") // RFC 6376 §6.1.2, k= against a=
		return
	}
	if k.services != nil && !contains(k.services, "email") {
		v.decide(Permerror, "dkim: inappropriate service") // RFC 6376 §3.6.1 s=
		return
	}
	// RFC 6376 §3.6.1 t=s: the i= domain MUST be d= itself, no subdomain.
	if contains(k.flags, "s") && p.idDomain != "" && !strings.EqualFold(p.idDomain, p.domain) {
		v.decide(Permerror, fmt.Sprintf("dkim: domain mismatch: the key has t=s, so the i= domain %q must be d= %q, not a subdomain of it",
			p.idDomain, p.domain))
		return
	}
	// RFC 6376 §3.5 x=: a signature past its expiry may be considered
	// invalid.
	if !p.expires.IsZero() && o.Now().After(p.expires) {
		v.decide(Permerror, "dkim: signature has expired at "+p.expires.UTC().Format(time.RFC3339))
	}
}

// finish decides a signature once its body hash is known (RFC 6376
// §6.1.3): the body hash, then the signature over the header fields.
func (v *verification) finish(fi fieldIndex) {
	if subtle.ConstantTimeCompare(v.body.h.Sum(nil), v.p.bodyHash) != 1 {
		detail := "dkim: body hash did not verify"
		if v.p.length > v.canon.total {
			detail += fmt.Sprintf(": l=%d is more than the %d octets of the body", v.p.length, v.canon.total)
		}
		v.decide(Fail, detail)
		return
	}
	digest := headerHash(fi, v.s.field, v.p)
	var err error
	switch v.key.algo {
	case "rsa":
		err = rsa.VerifyPKCS1v15(v.key.rsa, crypto.SHA256, digest, v.p.sig)
	case "ed25519":
		// RFC 8463 §3: Ed25519 signs the SHA-256 digest, not the data.
		if !ed25519.Verify(v.key.ed, digest, v.p.sig) {
			err = fmt.Errorf("invalid Ed25519 signature")
		}
	}
	if err != nil {
		v.decide(Fail, "dkim: signature did not verify: "+err.Error())
		return
	}
	// RFC 6376 §8.2: octets past l= are not signed.
	if unsigned := v.canon.total - v.body.n; unsigned > 0 {
		v.decide(Policy, fmt.Sprintf("dkim: signature verified (%s, %d-bit key), but only over l=%d octets of the body: "+
			"the %d octets after them are not signed", v.key.algo, v.key.bits, v.p.length, unsigned))
		return
	}
	v.decide(Pass, fmt.Sprintf("dkim: signature verified (%s, %d-bit key)", v.key.algo, v.key.bits))
}

// headerHash is the SHA-256 digest of the header fields h= names and of
// the signature field itself (RFC 6376 §3.7, §5.4.2): each name picks the
// last instance not yet picked, a name with none left adds nothing, and
// the signature field comes last, b= empty and without its final CRLF.
func headerHash(fi fieldIndex, sigField string, p sigParams) []byte {
	picked := make(map[string]int, len(p.headers))
	var data []byte
	for _, name := range p.headers {
		name = strings.ToLower(name)
		if at, k := fi.byName[name], picked[name]; k < len(at) {
			picked[name] = k + 1
			data = canonHeader(data, fi.fields[at[k]], p.headerCanon)
		}
	}
	data = canonHeader(data, withoutSignature(sigField), p.headerCanon)
	sum := sha256.Sum256(data[:len(data)-2])
	return sum[:]
}

// fieldIndex finds header fields by name. An h= can name a field
// thousands of times; looking each up in the whole header would cost
// their product.
type fieldIndex struct {
	fields []string
	byName map[string][]int // lower-case name: positions, the last first
}

func indexFields(fields []string) fieldIndex {
	fi := fieldIndex{fields: fields, byName: make(map[string][]int, len(fields))}
	for i := len(fields) - 1; i >= 0; i-- {
		name, _ := parseHeaderField(fields[i])
		name = strings.ToLower(name)
		fi.byName[name] = append(fi.byName[name], i)
	}
	return fi
}
