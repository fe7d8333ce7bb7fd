// RSA keys under 1024 bits are needed to sign the "key too small" cases;
// Go refuses to make or use them without this (the check itself refuses them
// whatever GODEBUG says: go-msgauth and this package both look at the size).
//
//go:debug rsa1024min=0

package dkim

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	msgauth "github.com/emersion/go-msgauth/dkim"

	"mxguard/checks/resolver"
	"mxguard/checks/resolver/dnstest"
)

// testKeys are made once per test binary: RSA key generation is slow.
type testKeys struct {
	rsa2048, rsa1024, rsa1020, rsa512 *rsa.PrivateKey
	ed                                ed25519.PrivateKey
}

var (
	keysOnce sync.Once
	keys     testKeys
)

func getKeys(tb testing.TB) testKeys {
	tb.Helper()
	keysOnce.Do(func() {
		gen := func(bits int) *rsa.PrivateKey {
			k, err := rsa.GenerateKey(rand.Reader, bits)
			if err != nil {
				panic(fmt.Sprintf("rsa %d: %v", bits, err))
			}
			return k
		}
		keys.rsa2048 = gen(2048)
		keys.rsa1024 = gen(1024)
		keys.rsa1020 = gen(1020)
		keys.rsa512 = gen(512)
		// A fixed seed: the fuzz corpus under testdata/ carries signatures
		// made with this key.
		keys.ed = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	})
	return keys
}

const testDomain = "example.org"

// keyRecord is the TXT record text of pub (RFC 6376 §3.6.1), with any
// extra tags ("t=s"), split into character-strings of at most 255 octets
// (RFC 1035 §3.3.14).
func keyRecord(tb testing.TB, pub crypto.PublicKey, extra ...string) string {
	tb.Helper()
	return zoneTXT(keyText(tb, pub, extra...))
}

// keyText is the text of pub's key record, as a TXT lookup returns it.
func keyText(tb testing.TB, pub crypto.PublicKey, extra ...string) string {
	tb.Helper()
	tags := "v=DKIM1; "
	for _, e := range extra {
		tags += e + "; "
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			tb.Fatal(err)
		}
		return tags + "k=rsa; p=" + base64.StdEncoding.EncodeToString(der)
	case ed25519.PublicKey:
		return tags + "k=ed25519; p=" + base64.StdEncoding.EncodeToString(k)
	}
	tb.Fatalf("key type %T", pub)
	return ""
}

// zoneTXT writes rec as the character-strings of a TXT record in a zone
// file, at most 255 octets each (RFC 1035 §3.3.14).
func zoneTXT(rec string) string {
	var parts []string
	for len(rec) > 255 {
		parts = append(parts, `"`+rec[:255]+`"`)
		rec = rec[255:]
	}
	parts = append(parts, `"`+rec+`"`)
	return strings.Join(parts, " ")
}

// testZone is the zone every test serves: one selector per key, plus
// names for the failure cases.
func testZone(tb testing.TB) string {
	k := getKeys(tb)
	var b strings.Builder
	fmt.Fprintf(&b, "$ORIGIN %s.\n$TTL 300\n", testDomain)
	b.WriteString("@ IN SOA ns.example.org. hostmaster.example.org. 1 3600 600 86400 300\n")
	for sel, pub := range map[string]crypto.PublicKey{
		"rsa2048": &k.rsa2048.PublicKey,
		"rsa1024": &k.rsa1024.PublicKey,
		"rsa1020": &k.rsa1020.PublicKey,
		"rsa512":  &k.rsa512.PublicKey,
		"ed":      k.ed.Public(),
		// The ServFail and Drop cases: the record exists, the server
		// will not give it.
		"servfail": k.ed.Public(),
		"drop":     k.ed.Public(),
	} {
		fmt.Fprintf(&b, "%s._domainkey IN TXT %s\n", sel, keyRecord(tb, pub))
	}
	for i := range 10 {
		fmt.Fprintf(&b, "many%d._domainkey IN TXT %s\n", i, keyRecord(tb, k.ed.Public()))
	}
	// RFC 6376 §3.6.1 t=s: i= must not be in a subdomain of d=.
	fmt.Fprintf(&b, "strict._domainkey IN TXT %s\n", keyRecord(tb, k.ed.Public(), "t=s"))
	fmt.Fprintf(&b, "strictrsa._domainkey IN TXT %s\n", keyRecord(tb, &k.rsa2048.PublicKey, "t = y : s"))
	fmt.Fprintf(&b, "testing._domainkey IN TXT %s\n", keyRecord(tb, k.ed.Public(), "t=y"))
	b.WriteString("revoked._domainkey IN TXT \"v=DKIM1; k=rsa; p=\"\n")
	b.WriteString("nodata._domainkey IN A 192.0.2.1\n")
	b.WriteString("twokeys._domainkey IN TXT " + keyRecord(tb, k.ed.Public()) + "\n")
	b.WriteString("twokeys._domainkey IN TXT " + keyRecord(tb, &k.rsa2048.PublicKey) + "\n")
	return b.String()
}

// env is a test DNS server with the test zone and resolvers that ask it:
// res with a timeout long enough that a loaded machine never turns an
// answer into a timeout, short for the cases that are to time out.
type env struct {
	dns        *dnstest.Server
	res, short *resolver.Resolver
}

func newEnv(tb testing.TB) *env {
	tb.Helper()
	s := dnstest.Start(tb, testZone(tb))
	s.ServFail("servfail._domainkey." + testDomain)
	s.Drop("drop._domainkey." + testDomain)
	newRes := func(timeout time.Duration) *resolver.Resolver {
		r, err := resolver.New(resolver.Options{Servers: []string{s.Addr()}, Timeout: timeout, Attempts: 1})
		if err != nil {
			tb.Fatal(err)
		}
		return r
	}
	return &env{dns: s, res: newRes(5 * time.Second), short: newRes(100 * time.Millisecond)}
}

func (e *env) opts() Options { return Options{Lookup: e.res.LookupTXT} }

// baseMessage is a plain message with CRLF line ends and a body of about
// bodyLen octets.
func baseMessage(bodyLen int) []byte {
	var b bytes.Buffer
	b.WriteString("From: Alice <alice@example.org>\r\n")
	b.WriteString("To: Bob <bob@example.net>\r\n")
	b.WriteString("Subject: quarterly figures\r\n")
	b.WriteString("Date: Mon, 02 Jan 2006 15:04:05 +0000\r\n")
	b.WriteString("Message-ID: <1234@example.org>\r\n")
	b.WriteString("\r\n")
	line := "The quick brown fox jumps over the lazy dog, again and again.\r\n"
	for b.Len() < bodyLen || bodyLen == 0 {
		b.WriteString(line)
		if bodyLen == 0 {
			break
		}
	}
	return b.Bytes()
}

var signedHeaders = []string{"From", "To", "Subject", "Date", "Message-ID"}

// sign adds a DKIM-Signature made with key under selector to msg.
func sign(tb testing.TB, msg []byte, key crypto.Signer, selector string, edit ...func(*msgauth.SignOptions)) []byte {
	tb.Helper()
	o := &msgauth.SignOptions{
		Domain:                 testDomain,
		Selector:               selector,
		Signer:                 key,
		HeaderCanonicalization: msgauth.CanonicalizationRelaxed,
		BodyCanonicalization:   msgauth.CanonicalizationRelaxed,
		HeaderKeys:             signedHeaders,
	}
	for _, f := range edit {
		f(o)
	}
	var out bytes.Buffer
	if err := msgauth.Sign(&out, bytes.NewReader(msg), o); err != nil {
		tb.Fatal(err)
	}
	return out.Bytes()
}

// editSignature applies f to the first DKIM-Signature field's text. The
// result no longer verifies cryptographically; the cases that use it are
// refused before the signature is computed.
func editSignature(tb testing.TB, msg []byte, f func(string) string) []byte {
	tb.Helper()
	s := string(msg)
	const name = "DKIM-Signature:"
	if !strings.HasPrefix(s, name) {
		tb.Fatal("message does not start with a DKIM-Signature")
	}
	// The field ends at the first line not starting with white space.
	end := 0
	for {
		i := strings.Index(s[end:], "\r\n")
		end += i + 2
		if end >= len(s) || (s[end] != ' ' && s[end] != '\t') {
			break
		}
	}
	return []byte(f(s[:end]) + s[end:])
}

// strip returns r with Detail cleared, for comparing everything else.
func strip(r Result) Result {
	out := Result{Result: r.Result}
	for _, s := range r.Signatures {
		s.Detail = ""
		out.Signatures = append(out.Signatures, s)
	}
	return out
}

func formatResult(r Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "result=%s\n", r.Result)
	for i, s := range r.Signatures {
		fmt.Fprintf(&b, "  [%d] %+v\n", i, s)
	}
	return b.String()
}

// ctx returns a context for one test with a deadline well past any
// timeout the test expects.
func testCtx(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	tb.Cleanup(cancel)
	return ctx
}
