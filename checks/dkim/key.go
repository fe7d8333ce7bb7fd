package dkim

import (
	"context"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
)

// pubKey is a key record (RFC 6376 §3.6.1) as the verification uses it.
type pubKey struct {
	algo     string // k=: "rsa" or "ed25519"
	bits     int    // the RSA modulus size, or 256 for Ed25519
	rsa      *rsa.PublicKey
	ed       ed25519.PublicKey
	hashes   []string // h=: the hash algorithms allowed; nil for any
	services []string // s=: the services allowed; nil for any
	flags    []string // t=
}

// keyResult is the outcome of fetching one key: a key, or the result word
// and detail its failure gives every signature that names it.
type keyResult struct {
	key    pubKey
	result string // "" when key is usable
	detail string
}

// fetchKey looks up and parses the key record name (RFC 6376 §3.6.2.2).
func fetchKey(ctx context.Context, look TXTLookup, name string) (kr keyResult) {
	// A panic in a lookup must not take the proxy down; fetchKey runs on
	// goroutines of its own when a message names several keys.
	defer func() {
		if p := recover(); p != nil {
			panics.Add(1)
			kr = keyResult{result: Temperror, detail: fmt.Sprintf("dkim: key unavailable: dkim: internal error in lookup: %v", p)}
		}
	}()
	if look == nil {
		return keyResult{result: Temperror, detail: "dkim: key unavailable: dkim: no resolver configured"}
	}
	txts, err := look(ctx, name)
	if err != nil {
		if permanent(err) {
			return keyResult{result: Permerror, detail: "dkim: no key for signature: " + err.Error()}
		}
		return keyResult{result: Temperror, detail: "dkim: key unavailable: " + err.Error()}
	}
	switch len(txts) {
	case 0:
		return keyResult{result: Permerror, detail: "dkim: no valid key found"}
	case 1:
	default:
		// RFC 6376 §3.6.2.2: several records give undefined results.
		return keyResult{result: Permerror, detail: "dkim: multiple TXT records found for key"}
	}
	k, err := parseKey(txts[0])
	if err != nil {
		return keyResult{result: Permerror, detail: err.Error()}
	}
	return keyResult{key: k}
}

// permanent reports whether a lookup error says the key does not exist.
// Only a definite "does not exist" is permanent: RFC 6376 §6.1.2 makes a
// missing key PERMFAIL ("no key for signature") and a query that fails to
// respond TEMPFAIL ("key unavailable"). Anything else (SERVFAIL, timeouts,
// a cancelled context, an error of unknown kind) is temporary, so that
// trouble on our side never becomes a permanent failure of the sender's
// signature.
func permanent(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound && !de.IsTimeout && !de.IsTemporary
}

// parseKey parses a key record (RFC 6376 §3.6.1). The messages are
// go-msgauth's, whose parser this follows.
func parseKey(rec string) (pubKey, error) {
	tags, err := parseTags(rec)
	if err != nil {
		return pubKey{}, errors.New("dkim: key record error: " + err.Error())
	}
	if v, ok := tags["v"]; ok && v != "DKIM1" {
		return pubKey{}, errors.New("dkim: incompatible public key version")
	}
	p, ok := tags["p"]
	if !ok {
		return pubKey{}, errors.New("dkim: key syntax error: missing public key data")
	}
	if p == "" {
		return pubKey{}, errors.New("dkim: key revoked") // RFC 6376 §3.6.1 p=
	}
	b, err := base64.StdEncoding.DecodeString(stripWhitespace(p))
	if err != nil {
		return pubKey{}, errors.New("dkim: key syntax error: " + err.Error())
	}
	var k pubKey
	switch tags["k"] {
	case "rsa", "": // RFC 6376 §3.6.1: k= defaults to rsa
		pub, err := x509.ParsePKIXPublicKey(b)
		if err != nil {
			// RFC 6376 erratum 3017: RSAPublicKey is seen as well.
			pub, err = x509.ParsePKCS1PublicKey(b)
			if err != nil {
				return pubKey{}, errors.New("dkim: key syntax error: " + err.Error())
			}
		}
		rk, ok := pub.(*rsa.PublicKey)
		if !ok {
			return pubKey{}, errors.New("dkim: key syntax error: not an RSA public key")
		}
		k = pubKey{algo: "rsa", bits: rk.N.BitLen(), rsa: rk}
	case "ed25519": // RFC 8463 §4: the raw 32-octet key
		if len(b) != ed25519.PublicKeySize {
			return pubKey{}, fmt.Errorf("dkim: invalid Ed25519 public key size: %v bytes", len(b))
		}
		k = pubKey{algo: "ed25519", bits: 256, ed: ed25519.PublicKey(b)}
	default:
		return pubKey{}, errors.New("dkim: unsupported key algorithm")
	}
	if h, ok := tags["h"]; ok {
		k.hashes = tagList(h)
	}
	if s, ok := tags["s"]; ok {
		if list := tagList(s); !contains(list, "*") {
			k.services = list
		}
	}
	if t, ok := tags["t"]; ok {
		k.flags = tagList(t)
	}
	return k, nil
}

// tagList splits a colon-separated tag value, dropping white space.
func tagList(s string) []string {
	list := strings.Split(s, ":")
	for i, t := range list {
		list[i] = stripWhitespace(t)
	}
	return list
}
