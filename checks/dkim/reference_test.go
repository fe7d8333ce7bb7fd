package dkim

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	msgauth "github.com/emersion/go-msgauth/dkim"

	"mxguard/checks/resolver"
	"mxguard/checks/resolver/dnstest"
)

// The reference verifiers, as Debian packages them: python3-dkim (dkimpy,
// with python3-nacl for Ed25519) and libmail-dkim-perl (Mail::DKIM).
const (
	refPython = "/usr/bin/python3" // Debian's, which has python3-dkim; not a python3 on PATH
	refPerl   = "/usr/bin/perl"
	refDomain = "sign.test"
)

// refCase is one message of the comparison and mxguard's word for each of
// its signatures, in header order.
type refCase struct {
	name string
	msg  []byte
	want []string
	// dkimpyIgnoresTS: dkimpy (1.1.4) does not read the key's t= flags, so
	// it passes a signature that t=s forbids. mxguard follows RFC 6376
	// §3.6.1 and agrees with Mail::DKIM there; dkimpy may say pass.
	dkimpyIgnoresTS bool
}

// TestReferenceVerifiers verifies a set of messages with mxguard, dkimpy
// and Mail::DKIM and holds that they agree on every signature.
//
// The keys are published once: to mxguard through the in-process DNS
// server (dnstest), to the reference verifiers through their own lookup
// hooks, which answer from the same records and nothing else (dkimpy's
// dnsfunc, Mail::DKIM::DNS::query; the scripts under testdata/reference
// also refuse every socket), so no verifier ever asks the machine's
// resolver.
//
// How the verdicts map:
//
//   - The cryptographic verdict must be the same for all three: dkimpy's
//     True and Mail::DKIM's "pass" are mxguard's pass or policy; anything
//     else from them (dkimpy's False or exception, Mail::DKIM's "fail" or
//     "invalid") is anything else from mxguard.
//   - policy is mxguard's own word on top of that verdict: with l= and
//     content after the l octets, dkimpy and Mail::DKIM verify those l
//     octets, find them intact and say pass; mxguard agrees that the
//     signature verified and adds that the rest of the body is unsigned
//     (RFC 6376 §8.2, RFC 8601 §2.7.1), so that DMARC does not count it.
//   - Mail::DKIM's words also separate the failures: its "fail" (the body
//     or the header fields were altered) is mxguard's fail, its "invalid"
//     (the signature or key cannot be used) is mxguard's permerror.
//     dkimpy's exceptions do not follow that line (a body hash mismatch
//     is an exception, a missing key is False), so only its pass counts.
//   - Known differences, each allowed only where it is named: dkimpy does
//     not read t=s (refCase.dkimpyIgnoresTS); Mail::DKIM 1.20230212 has
//     no Ed25519 (RFC 8463) and calls such a key invalid, which this test
//     accepts only with its detail "unsupported algorithm ed25519-sha256".
//
// The Debian packages python3-dkim, python3-nacl and libmail-dkim-perl
// must be installed: the test fails, never skips, without them.
func TestReferenceVerifiers(t *testing.T) {
	requireReferences(t)
	k := getKeys(t)
	records := map[string]string{
		"rsa._domainkey." + refDomain:    keyText(t, &k.rsa2048.PublicKey),
		"ed._domainkey." + refDomain:     keyText(t, k.ed.Public()),
		"strict._domainkey." + refDomain: keyText(t, &k.rsa2048.PublicKey, "t=s"),
	}
	cases := refCases(t)

	// mxguard's verdicts, its keys served by the test DNS server.
	var zone strings.Builder
	fmt.Fprintf(&zone, "$ORIGIN %s.\n$TTL 300\n@ IN SOA ns hostmaster 1 3600 600 86400 300\n", refDomain)
	for name, text := range records {
		fmt.Fprintf(&zone, "%s. IN TXT %s\n", name, zoneTXT(text))
	}
	srv := dnstest.Start(t, zone.String())
	res, err := resolver.New(resolver.Options{Servers: []string{srv.Addr()}, Timeout: 5 * time.Second, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	keysFile := filepath.Join(dir, "keys.json")
	writeJSON(t, keysFile, records)
	var files []string
	for i, c := range cases {
		f := filepath.Join(dir, fmt.Sprintf("%02d.eml", i))
		if err := os.WriteFile(f, c.msg, 0o600); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	py := runReference(t, append([]string{refPython, "testdata/reference/dkimpy_verify.py", keysFile}, files...))
	pl := runReference(t, append([]string{refPerl, "testdata/reference/maildkim_verify.pl", keysFile}, files...))

	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := Verify(testCtx(t), bytes.NewReader(c.msg), Options{Lookup: res.LookupTXT})
			ours, pys, pls := r.Signatures, py[files[i]], pl[files[i]]
			if len(ours) != len(c.want) || len(pys) != len(c.want) || len(pls) != len(c.want) {
				t.Fatalf("signatures: mxguard %d, dkimpy %d, Mail::DKIM %d, want %d\nmxguard %s",
					len(ours), len(pys), len(pls), len(c.want), formatResult(r))
			}
			for j, want := range c.want {
				got := ours[j]
				if got.Result != want {
					t.Errorf("signature %d: mxguard says %s (%s), want %s", j, got.Result, got.Detail, want)
				}
				verified := want == Pass || want == Policy
				if (pys[j].Result == "pass") != verified && !(c.dkimpyIgnoresTS && pys[j].Result == "pass") {
					t.Errorf("signature %d: dkimpy says %s %q, mxguard %s (%s)", j, pys[j].Result, pys[j].Detail, got.Result, got.Detail)
				}
				if w := mailDKIMWord(want); pls[j].Result != w &&
					!(got.Algorithm == "ed25519-sha256" && pls[j].Result == "invalid" && strings.Contains(pls[j].Detail, "unsupported algorithm ed25519-sha256")) {
					t.Errorf("signature %d: Mail::DKIM says %s %q, want %s for mxguard's %s (%s)", j, pls[j].Result, pls[j].Detail, w, got.Result, got.Detail)
				}
			}
		})
	}
}

// mailDKIMWord is Mail::DKIM's word for mxguard's.
func mailDKIMWord(ours string) string {
	switch ours {
	case Pass, Policy:
		return "pass"
	case Permerror:
		return "invalid"
	}
	return ours // fail, temperror
}

// refCases are the messages of the comparison, each signed for sign.test.
func refCases(t *testing.T) []refCase {
	k := getKeys(t)
	msg := bytes.ReplaceAll(messageWithWhitespace(), []byte("example.org"), []byte(refDomain))
	// go-msgauth signs the plain cases; testSign those with l=.
	gm := func(m []byte, key crypto.Signer, sel, canon, id string) []byte {
		return sign(t, m, key, sel, func(o *msgauth.SignOptions) {
			o.Domain, o.Identifier = refDomain, id
			o.HeaderCanonicalization = msgauth.Canonicalization(canon)
			o.BodyCanonicalization = msgauth.Canonicalization(canon)
		})
	}
	ts := func(key crypto.Signer, sel, hc, bc string, l int) []byte {
		return testSign(t, msg, key, sel, signOpts{Domain: refDomain, HeaderCanon: hc, BodyCanon: bc, BodyLength: l})
	}
	replace := func(m []byte, old, new string) []byte {
		if !bytes.Contains(m, []byte(old)) {
			t.Fatalf("refCases: %q not in the message", old)
		}
		return bytes.Replace(m, []byte(old), []byte(new), 1)
	}
	appendix := "\r\nP.S. wire the money to account 12345678.\r\n"

	rsaRelaxed := gm(msg, k.rsa2048, "rsa", relaxed, "")
	rsaSimple := gm(msg, k.rsa2048, "rsa", simple, "")
	edRelaxed := gm(msg, k.ed, "ed", relaxed, "")
	lWhole := ts(k.rsa2048, "rsa", relaxed, relaxed, wholeBody)
	lWholeSimple := ts(k.rsa2048, "rsa", simple, simple, wholeBody)
	return []refCase{
		// Canonicalisations and key types.
		{name: "rsa relaxed/relaxed", msg: rsaRelaxed, want: []string{Pass}},
		{name: "rsa simple/simple", msg: rsaSimple, want: []string{Pass}},
		{name: "rsa relaxed/simple", msg: ts(k.rsa2048, "rsa", relaxed, simple, noL), want: []string{Pass}},
		{name: "rsa simple/relaxed", msg: ts(k.rsa2048, "rsa", simple, relaxed, noL), want: []string{Pass}},
		{name: "ed25519 relaxed/relaxed", msg: edRelaxed, want: []string{Pass}},
		{name: "ed25519 simple/simple", msg: gm(msg, k.ed, "ed", simple, ""), want: []string{Pass}},
		{name: "relaxed body, white space changed", msg: replace(rsaRelaxed, "the  figures", "the \t figures"), want: []string{Pass}},
		{name: "relaxed header, white space changed", msg: replace(rsaRelaxed, "Subject:  quarterly", "Subject: quarterly"), want: []string{Pass}},
		{name: "simple body, white space changed", msg: replace(rsaSimple, "the  figures", "the \t figures"), want: []string{Fail}},
		// Tampering.
		{name: "rsa, body changed", msg: replace(rsaRelaxed, "figures are", "figures were"), want: []string{Fail}},
		{name: "rsa simple, body changed", msg: replace(rsaSimple, "figures are", "figures were"), want: []string{Fail}},
		{name: "ed25519, body changed", msg: replace(edRelaxed, "figures are", "figures were"), want: []string{Fail}},
		{name: "rsa, header changed", msg: replace(rsaRelaxed, "quarterly", "annual"), want: []string{Fail}},
		{name: "ed25519, header changed", msg: replace(edRelaxed, "quarterly", "annual"), want: []string{Fail}},
		// i= against d= (RFC 6376 §3.5), and the key's t=s (§3.6.1).
		{name: "i= in other case", msg: gm(msg, k.rsa2048, "rsa", relaxed, "JLong@Sign.Test"), want: []string{Pass}},
		{name: "i= domain only, capitals", msg: gm(msg, k.rsa2048, "rsa", relaxed, "@SIGN.TEST"), want: []string{Pass}},
		{name: "ed25519, i= in other case", msg: gm(msg, k.ed, "ed", relaxed, "JLong@Sign.Test"), want: []string{Pass}},
		{name: "i= in a subdomain", msg: gm(msg, k.rsa2048, "rsa", relaxed, "bob@Mail.Sign.Test"), want: []string{Pass}},
		{name: "i= in another domain", msg: gm(msg, k.rsa2048, "rsa", relaxed, "alice@example.org"), want: []string{Permerror}},
		{name: "t=s key, i= in a subdomain", msg: gm(msg, k.rsa2048, "strict", relaxed, "bob@mail.sign.test"), want: []string{Permerror},
			dkimpyIgnoresTS: true},
		{name: "t=s key, i= is d= in other case", msg: gm(msg, k.rsa2048, "strict", relaxed, "JLong@Sign.Test"), want: []string{Pass}},
		{name: "t=s key, no i=", msg: gm(msg, k.rsa2048, "strict", simple, ""), want: []string{Pass}},
		// l= (RFC 6376 §3.4.5, §8.2).
		{name: "l= the whole body, relaxed", msg: lWhole, want: []string{Pass}},
		{name: "l= the whole body, simple", msg: lWholeSimple, want: []string{Pass}},
		{name: "l= the whole body, empty lines added", msg: append(bytes.Clone(lWhole), "\r\n\r\n"...), want: []string{Pass}},
		{name: "l=, content appended", msg: append(bytes.Clone(lWhole), appendix...), want: []string{Policy}},
		{name: "l=, content appended, simple", msg: append(bytes.Clone(lWholeSimple), appendix...), want: []string{Policy}},
		{name: "l= part of the body", msg: ts(k.rsa2048, "rsa", relaxed, relaxed, 20), want: []string{Policy}},
		{name: "ed25519, l=, content appended", msg: append(ts(k.ed, "ed", relaxed, relaxed, wholeBody), appendix...), want: []string{Policy}},
		{name: "l=, signed part changed", msg: replace(append(bytes.Clone(lWhole), appendix...), "figures are", "figures were"), want: []string{Fail}},
		// Several signatures: each judged on its own.
		{name: "ed25519 over rsa", msg: gm(rsaRelaxed, k.ed, "ed", relaxed, ""), want: []string{Pass, Pass}},
		{name: "no key over l= appended", msg: gm(append(bytes.Clone(lWhole), appendix...), k.rsa2048, "nokey", relaxed, ""),
			want: []string{Permerror, Policy}},
	}
}

// refVerdict is a reference verifier's word on one signature.
type refVerdict struct {
	Result string `json:"result"`
	Detail string `json:"detail"`
}

// requireReferences fails t, with what to install, unless both reference
// verifiers can run.
func requireReferences(t *testing.T) {
	t.Helper()
	for _, c := range [][]string{
		{refPython, "-c", "import dkim, nacl"},
		{refPerl, "-MMail::DKIM::Verifier", "-MJSON::PP", "-MNet::DNS", "-e1"},
	} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("the reference DKIM verifiers are needed: install the Debian packages python3-dkim, python3-nacl "+
				"and libmail-dkim-perl.\n%s: %v\n%s", strings.Join(c, " "), err, out)
		}
	}
}

// runReference runs a verifier script and reads its verdicts.
func runReference(t *testing.T, argv []string) map[string][]refVerdict {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", argv[1], err, stderr.String())
	}
	var v map[string][]refVerdict
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("%s: %v\n%s\n%s", argv[1], err, out, stderr.String())
	}
	return v
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
