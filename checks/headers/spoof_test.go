package headers

import (
	"testing"
)

func TestDisplayNameSpoof(t *testing.T) {
	opts := Options{Domains: []string{"example.org"}, Protected: []string{"bank.test", "bücher.test"}}
	tests := []struct {
		name    string
		from    []string // the From field's lines; more than one folds
		spoof   bool
		detail  string // wanted SpoofDetail, when set
		display string // wanted FromDisplay, when set
	}{
		// Flagged.
		{
			name: "address in quoted display name", from: []string{`From: "ceo@example.com" <x@evil.test>`}, spoof: true,
			detail: "display name shows the address ceo@example.com, but the From domain is evil.test", display: "ceo@example.com",
		},
		{name: "address in unquoted phrase", from: []string{`From: ceo@example.com <x@evil.test>`}, spoof: true},
		{
			name: "address in RFC 2047 q display name", from: []string{`From: =?utf-8?q?ceo=40paypal=2Etest?= <x@evil.test>`}, spoof: true,
			detail: "display name shows the address ceo@paypal.test, but the From domain is evil.test", display: "ceo@paypal.test",
		},
		{name: "address in RFC 2047 b display name", from: []string{`From: =?UTF-8?B?Y2VvQHBheXBhbC50ZXN0?= <x@evil.test>`}, spoof: true},
		{name: "RFC 2047 inside quotes", from: []string{`From: "=?utf-8?q?ceo=40paypal.test?=" <x@evil.test>`}, spoof: true},
		{name: "fullwidth at", from: []string{"From: \"ceo＠paypal.test\" <x@evil.test>"}, spoof: true, display: "ceo＠paypal.test"},
		{name: "small commercial at", from: []string{"From: \"ceo﹫paypal.test\" <x@evil.test>"}, spoof: true},
		{name: "fullwidth at RFC 2047 encoded", from: []string{`From: =?utf-8?b?Y2Vv77ygcGF5cGFsLnRlc3Q=?= <x@evil.test>`}, spoof: true},
		{name: "upper-case address", from: []string{`From: "CEO@PayPal.TEST" <x@evil.test>`}, spoof: true},
		{name: "address in comment of bare address", from: []string{`From: x@evil.test (ceo@paypal.test)`}, spoof: true},
		{name: "address in comment with empty phrase", from: []string{`From: <x@evil.test> (ceo@paypal.test)`}, spoof: true},
		{
			name: "our domain named from outside", from: []string{`From: "Example.org Support" <help@evil.test>`}, spoof: true,
			detail: "display name names our domain example.org, but the From domain is evil.test",
		},
		{name: "our domain alone", from: []string{`From: example.org <help@evil.test>`}, spoof: true},
		{name: "our domain as prefix of another", from: []string{`From: "example.org.evil.test" <help@evil.test>`}, spoof: true},
		{name: "subdomain of ours named", from: []string{`From: "mail.example.org" <help@evil.test>`}, spoof: true},
		{
			name: "protected domain named", from: []string{`From: "Bank.test Security" <alerts@bank-secure.test>`}, spoof: true,
			detail: "display name names protected domain bank.test, but the From domain is bank-secure.test",
		},
		{name: "protected domain with fullwidth dot", from: []string{"From: \"bank．test\" <a@evil.test>"}, spoof: true},
		{name: "protected domain with Cyrillic a", from: []string{"From: \"b\u0430nk.test\" <a@evil.test>"}, spoof: true},
		{name: "protected domain with zero-width space", from: []string{"From: \"bank\u200b.test\" <a@evil.test>"}, spoof: true},
		{name: "protected IDN in Unicode", from: []string{`From: "Bücher.test Kundendienst" <a@evil.test>`}, spoof: true},
		{name: "protected IDN in A-labels", from: []string{`From: "xn--bcher-kva.test" <a@evil.test>`}, spoof: true},
		{name: "folded display name", from: []string{`From: "Support`, ` ceo@paypal.test" <x@evil.test>`}, spoof: true},
		{name: "second From field spoofs", from: []string{`From: Alice <alice@evil.test>`, `From: "ceo@bank.test" <x@evil.test>`}, spoof: true},
		{
			name: "second From field names the first's domain", from: []string{`From: a@bank.test`, `From: "bank.test" <x@evil.test>`}, spoof: true,
			detail: "display name names protected domain bank.test, but the From domain is evil.test",
		},
		{name: "no From domain", from: []string{`From: "example.org" <postmaster>`}, spoof: true},

		// Not flagged.
		{name: "same address", from: []string{`From: "alice@example.org" <alice@example.org>`}, display: "alice@example.org"},
		{name: "same organisation", from: []string{`From: "news@example.com" <bounce@mail.example.com>`}},
		{name: "our domain from our subdomain", from: []string{`From: "Example.org Support" <help@support.example.org>`}},
		{name: "protected domain from itself", from: []string{`From: "bank.test" <alerts@bank.test>`}},
		{name: "word like example", from: []string{`From: "Example Corp" <a@evil.test>`}},
		{name: "domain inside a longer label", from: []string{`From: "notexample.org" <a@evil.test>`}},
		{name: "domain followed by more label", from: []string{`From: "example.organic" <a@evil.test>`}},
		{name: "at sign without domain", from: []string{`From: "Bob @ home" <bob@evil.test>`}},
		{name: "at without dot", from: []string{`From: "bob@home" <bob@evil.test>`}},
		{name: "two From fields, each display at its own domain", from: []string{`From: "bank.test" <a@bank.test>`, `From: "ceo@evil.test" <x@evil.test>`}},
		{name: "plain address", from: []string{`From: alice@example.org`}},
		{name: "unknown charset read as UTF-8", from: []string{`From: =?x-unknown?q?ceo=40bank.test?= <x@evil.test>`}, spoof: true, display: "ceo@bank.test"},
		{name: "Cyrillic name", from: []string{"From: \"Иван Петров\" <ivan@evil.test>"}, display: "Иван Петров"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Check(hdr(append(tt.from, "Subject: x", "Date: Tue, 1 Jul 2025 09:59:58 +0200")...), opts)
			if got.DisplayNameSpoof != tt.spoof {
				t.Errorf("DisplayNameSpoof = %v (%q), want %v; display %q", got.DisplayNameSpoof, got.SpoofDetail, tt.spoof, got.FromDisplay)
			}
			if got.DisplayNameSpoof != (got.SpoofDetail != "") {
				t.Errorf("SpoofDetail %q disagrees with DisplayNameSpoof %v", got.SpoofDetail, got.DisplayNameSpoof)
			}
			if tt.detail != "" && got.SpoofDetail != tt.detail {
				t.Errorf("SpoofDetail:\n got %q\nwant %q", got.SpoofDetail, tt.detail)
			}
			if tt.display != "" && got.FromDisplay != tt.display {
				t.Errorf("FromDisplay = %q, want %q", got.FromDisplay, tt.display)
			}
		})
	}
}

func TestDecodeWords(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"=?utf-8?q?a?= =?utf-8?q?b?=", "ab"},
		{"=?utf-8?q?a?= x =?utf-8?q?b?=", "a x b"},
		{"=?utf-8?q?a?=  ", "a  "},
		{"=?us-ascii?q?a=FF?=", "a\uFFFD"},
		{"=?ISO-8859-1?Q?caf=E9?=", "café"},
		{"=?latin1?q?caf=E9?=", "café"},
		{"=?cp1252?q?=80?=", "€"},
		{"=?utf-8*en?q?hi?=", "hi"},
		{"=?utf-8?q?bad=ZZ?= =?utf-8?q?ok?=", "=?utf-8?q?bad=ZZ?= ok"},
		{"=?=?=?", "=?=?=?"},
		{"=?utf-8?q?a b?=", "=?utf-8?q?a b?="},
		{"=?utf-8?q?=FF?=", "\uFFFD"},
		{"=?utf-8?q?\xff?=", "=?utf-8?q?\uFFFD?="},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := decodeWords(tt.in); got != tt.want {
				t.Errorf("decodeWords(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
