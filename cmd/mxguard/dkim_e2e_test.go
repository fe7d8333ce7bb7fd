package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"

	"mxguard/checks/dkim/dkimtest"
)

// TestDKIMTagsThroughDMARC sends mail From bank.test (DMARC p=reject, and
// SPF fails from 127.0.0.1), so only an aligned DKIM pass lets it through,
// signed the ways RFC 6376 allows and go-msgauth got wrong: i= in another
// case, l= over the whole body, content appended after l=, and a t=s key
// with i= in a subdomain. A signature that verifies over only part of the
// body is policy, which DMARC does not count.
func TestDKIMTagsThroughDMARC(t *testing.T) {
	h := startAuth(t)
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p := base64.StdEncoding.EncodeToString(pub)
	h.dns.AddZone("sel._domainkey.bank.test. 300 IN TXT \"v=DKIM1; k=ed25519; p=" + p + "\"\n" +
		"strict._domainkey.bank.test. 300 IN TXT \"v=DKIM1; k=ed25519; t=s; p=" + p + "\"")
	msg := "From: CEO <ceo@bank.test>\r\nTo: user@example.org\r\nSubject: transfer\r\nMessage-ID: <t1@bank.test>\r\n\r\nPlease pay the invoice attached.\r\n"
	signed := func(o dkimtest.Options) string {
		o.Domain, o.Headers = "bank.test", []string{"From", "To", "Subject", "Message-ID"}
		if o.Selector == "" {
			o.Selector = "sel"
		}
		b, err := dkimtest.Sign([]byte(msg), priv, o)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	const refused = "550 5.7.1 message refused: the DMARC policy of the From domain says reject"
	appended := signed(dkimtest.Options{BodyLength: dkimtest.WholeBody}) + "P.S. The account number has changed: 12345678.\r\n"
	cases := []struct {
		name, body, reply, dkim string
		bodyLength              bool
	}{
		{"i= in another case", signed(dkimtest.Options{Identifier: "CEO@Bank.Test"}), "250 2.0.0", "pass", false},
		{"l= the whole body", signed(dkimtest.Options{BodyLength: dkimtest.WholeBody}), "250 2.0.0", "pass", true},
		{"l=, content appended", appended, refused, "policy", true},
		{"t=s key, i= in a subdomain", signed(dkimtest.Options{Selector: "strict", Identifier: "ceo@mail.bank.test"}), refused, "permerror", false},
	}
	for _, c := range cases {
		h.send(t, "ceo@bank.test", c.body, c.reply)
	}
	recs := waitVerdicts(t, h.vlog, len(cases))
	for i, c := range cases {
		f := recs[i].Facts
		if len(f.DKIM.Signatures) != 1 || f.DKIM.Result != c.dkim || f.DKIM.Signatures[0].Result != c.dkim ||
			f.DKIM.Signatures[0].BodyLength != c.bodyLength || f.DMARC.DKIMAligned != (c.dkim == "pass") {
			t.Errorf("%s: dkim %+v, dmarc %+v; want dkim %s, body_length %v", c.name, f.DKIM, f.DMARC, c.dkim, c.bodyLength)
		}
	}
	got := h.stored(t)
	if len(got) != 2 {
		t.Fatalf("backend holds %d messages, want the 2 that passed", len(got))
	}
	for _, m := range got {
		if !strings.Contains(m, "dkim=pass header.d=bank.test") || !strings.Contains(m, "dmarc=pass header.from=bank.test") {
			t.Errorf("delivered without dkim=pass and dmarc=pass:\n%s", m)
		}
	}
}
