package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"
)

// corpusDir is the shared black-box corpus at the top of the module:
// messages, zones, rules files and keys that the end-to-end tests, the
// demo and the benchmarks all read (testdata/README.md lists them).
const corpusDir = "../../testdata"

// corpusPath is the path of a corpus file, e.g. "zones/e2e.zone".
func corpusPath(name string) string { return filepath.Join(corpusDir, filepath.FromSlash(name)) }

// corpusFile reads a corpus file, failing t when it cannot.
func corpusFile(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(corpusPath(name))
	if err != nil {
		t.Fatalf("corpus: %v", err)
	}
	return string(b)
}

// resign re-signs messages/signed.eml, after an edit, with the corpus key.
var resign = flag.Bool("resign", false, "sign testdata/messages/signed.eml afresh with testdata/keys/sender.test-corpus.ed25519.pem")

// corpusKey is the test-only DKIM key of the corpus: it signed
// messages/signed.eml, and zones/auth.zone publishes its public half as
// corpus._domainkey.sender.test.
func corpusKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	block, _ := pem.Decode([]byte(corpusFile(t, "keys/sender.test-corpus.ed25519.pem")))
	if block == nil {
		t.Fatal("corpus: keys/sender.test-corpus.ed25519.pem holds no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatalf("corpus: keys/sender.test-corpus.ed25519.pem: %v", err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		t.Fatalf("corpus: keys/sender.test-corpus.ed25519.pem holds a %T, want an Ed25519 key", k)
	}
	return priv
}

// TestCorpusSignedMessage: the key in keys/ is the one zones/auth.zone
// publishes, and messages/signed.eml carries a signature by it that
// verifies (with that zone's record, no DNS), so the corpus cannot drift
// from its key. With -resign, signed.eml is signed afresh first.
func TestCorpusSignedMessage(t *testing.T) {
	priv := corpusKey(t)
	record := "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(priv.Public().(ed25519.PublicKey))
	if zone := corpusFile(t, "zones/auth.zone"); !strings.Contains(zone, "corpus._domainkey.sender.test. IN TXT \""+record+"\"") {
		t.Fatalf("zones/auth.zone does not publish the corpus key as corpus._domainkey.sender.test: want %q", record)
	}
	msg := corpusFile(t, "messages/signed.eml")
	if *resign {
		msg = signCorpus(t, priv, msg)
		if err := os.WriteFile(corpusPath("messages/signed.eml"), []byte(msg), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	verifs, err := dkim.VerifyWithOptions(strings.NewReader(msg), &dkim.VerifyOptions{LookupTXT: func(name string) ([]string, error) {
		if name != "corpus._domainkey.sender.test" {
			return nil, fmt.Errorf("corpus: no TXT record for %s", name)
		}
		return []string{record}, nil
	}})
	if err != nil || len(verifs) != 1 || verifs[0].Err != nil || verifs[0].Domain != "sender.test" {
		t.Fatalf("messages/signed.eml does not carry one valid signature by the corpus key (run this test with -resign after editing it): %v %+v", err, verifs)
	}
}

// signCorpus removes the DKIM-Signature fields of msg and signs it for
// sender.test with selector corpus.
func signCorpus(t *testing.T, priv ed25519.PrivateKey, msg string) string {
	t.Helper()
	header, body, _ := strings.Cut(msg, "\r\n\r\n")
	var kept []string
	skipping := false
	for _, line := range strings.SplitAfter(header+"\r\n", "\r\n") {
		if line == "" {
			continue
		}
		if line[0] != ' ' && line[0] != '\t' {
			skipping = strings.HasPrefix(strings.ToLower(line), "dkim-signature:")
		}
		if !skipping {
			kept = append(kept, line)
		}
	}
	var b bytes.Buffer
	err := dkim.Sign(&b, strings.NewReader(strings.Join(kept, "")+"\r\n"+body), &dkim.SignOptions{
		Domain: "sender.test", Selector: "corpus", Signer: priv,
		HeaderKeys: []string{"From", "To", "Date", "Message-ID", "Subject"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
