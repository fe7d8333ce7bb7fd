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
	"sync"
)

// keyCapture sits between go-msgauth and the TXTLookup. It normalises
// lookup errors to the form go-msgauth classifies correctly, and keeps the
// records it hands over, so the key size can be read from exactly the
// record go-msgauth verified with, without a second query of any kind.
type keyCapture struct {
	mu   sync.Mutex
	recs map[string][]string
}

// lookupFunc adapts look to go-msgauth's LookupTXT option, binding ctx.
// go-msgauth may call it from several goroutines at once.
func (c *keyCapture) lookupFunc(ctx context.Context, look TXTLookup) func(string) ([]string, error) {
	return func(name string) (txts []string, err error) {
		// go-msgauth calls this on its own goroutines when a message has
		// several signatures, where a panic would end the process.
		defer func() {
			if p := recover(); p != nil {
				panics.Add(1)
				txts, err = nil, &net.DNSError{Err: fmt.Sprintf("dkim: internal error in lookup: %v", p), Name: name, IsTemporary: true}
			}
		}()
		if look == nil {
			return nil, &net.DNSError{Err: "dkim: no resolver configured", Name: name, IsTemporary: true}
		}
		txts, err = look(ctx, name)
		if err != nil {
			return nil, dnsError(name, err)
		}
		c.mu.Lock()
		if c.recs == nil {
			c.recs = make(map[string][]string)
		}
		c.recs[name] = txts
		c.mu.Unlock()
		return txts, nil
	}
}

// dnsError turns a lookup error into an unwrapped *net.DNSError, the only
// shape go-msgauth classifies (by bare type assertion to net.Error and
// Temporary()). Only a definite "does not exist" stays permanent: RFC 6376
// §6.1.2 makes a missing key PERMFAIL ("no key for signature") and a query
// that fails to respond TEMPFAIL ("key unavailable"). Anything else —
// SERVFAIL, timeouts, a cancelled context, an error of unknown kind — is
// temporary, so that trouble on our side never becomes a permanent failure
// of the sender's signature.
func dnsError(name string, err error) error {
	var de *net.DNSError
	if errors.As(err, &de) {
		if de.IsNotFound && !de.IsTimeout && !de.IsTemporary {
			return de
		}
		if de.Temporary() {
			return de
		}
	}
	return &net.DNSError{Err: err.Error(), Name: name, IsTemporary: true}
}

// keyInfo is what the check reports about a key.
type keyInfo struct {
	algo string // "rsa" or "ed25519"
	bits int
}

var errNoKey = errors.New("dkim: key record not fetched")

// key parses the record captured for name the way go-msgauth's
// parsePublicKey does (query.go), but keeps the key's size.
func (c *keyCapture) key(name string) (keyInfo, error) {
	c.mu.Lock()
	txts, ok := c.recs[name]
	c.mu.Unlock()
	if !ok {
		return keyInfo{}, errNoKey
	}
	// RFC 6376 §3.6.2.2: several TXT records give undefined results;
	// go-msgauth refuses them, and so does this.
	if len(txts) != 1 {
		return keyInfo{}, errors.New("dkim: not exactly one key record")
	}
	return parseKey(txts[0])
}

// parseKey reads the key type and size of a key record (RFC 6376 §3.6.1).
func parseKey(rec string) (keyInfo, error) {
	tags, err := parseTags(rec)
	if err != nil {
		return keyInfo{}, err
	}
	p, ok := tags["p"]
	if !ok || p == "" {
		return keyInfo{}, errors.New("dkim: key record has no public key")
	}
	b, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(p, " ", ""))
	if err != nil {
		return keyInfo{}, errors.New("dkim: key record: bad base64")
	}
	switch tags["k"] {
	case "rsa", "": // RFC 6376 §3.6.1: k= defaults to rsa
		pub, err := x509.ParsePKIXPublicKey(b)
		if err != nil {
			// RFC 6376 erratum 3017: RSAPublicKey is seen as well.
			pub, err = x509.ParsePKCS1PublicKey(b)
			if err != nil {
				return keyInfo{}, errors.New("dkim: key record: bad rsa key")
			}
		}
		rk, ok := pub.(*rsa.PublicKey)
		if !ok {
			return keyInfo{}, errors.New("dkim: key record: not an rsa key")
		}
		return keyInfo{algo: "rsa", bits: rk.N.BitLen()}, nil
	case "ed25519": // RFC 8463 §4: the raw 32-byte key
		if len(b) != ed25519.PublicKeySize {
			return keyInfo{}, errors.New("dkim: key record: bad ed25519 key")
		}
		return keyInfo{algo: "ed25519", bits: 256}, nil
	default:
		return keyInfo{}, errors.New("dkim: key record: unsupported key type")
	}
}
