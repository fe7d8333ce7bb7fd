package dmarc

import "testing"

func TestIsDMARCRecord(t *testing.T) {
	tests := []struct {
		txt  string
		want bool
	}{
		{"v=DMARC1; p=none", true},
		{"v=DMARC1;p=none", true},
		{" v = DMARC1 ; p=none", true},
		{"V=DMARC1; p=none", true},  // tag names are case-insensitive ABNF literals
		{"v=dmarc1; p=none", false}, // §6.3: the value must match precisely
		{"v=DMARC2; p=none", false},
		{"p=none; v=DMARC1", false}, // §6.3: v must be first
		{"v=DMARC1x; p=none", false},
		{"v=spf1 -all", false},
		{"", false},
	}
	for _, tc := range tests {
		if got := isDMARCRecord(tc.txt); got != tc.want {
			t.Errorf("isDMARCRecord(%q) = %v, want %v", tc.txt, got, tc.want)
		}
	}
}

func TestParseRecord(t *testing.T) {
	tests := []struct {
		txt        string
		ok         bool
		p, sp, np  string
		pct        int // -1: absent
		strictDKIM bool
		strictSPF  bool
		dropped    int
	}{
		{txt: "v=DMARC1; p=reject", ok: true, p: "reject", pct: -1},
		{txt: "v=DMARC1; p=quarantine; sp=none; np=reject; pct=50; adkim=s; aspf=s", ok: true, p: "quarantine", sp: "none", np: "reject", pct: 50, strictDKIM: true, strictSPF: true},
		{txt: "v=DMARC1; p=reject; pct=101", ok: true, p: "reject", pct: -1, dropped: 1},
		{txt: "v=DMARC1; p=reject; np=bogus", ok: true, p: "reject", pct: -1, dropped: 1},
		{txt: "v=DMARC1; p=reject; ri=-5; rf=xml; fo=q", ok: true, p: "reject", pct: -1, dropped: 3},
		{txt: "v=DMARC1; p=reject; psd=y; t=n; x", ok: true, p: "reject", pct: -1},
		{txt: "v=DMARC1; p=reject; p=none", ok: true, p: "none", pct: -1},
		{txt: "v=DMARC1; P=QUARANTINE; SP=Reject", ok: true, p: "quarantine", sp: "reject", pct: -1},
		{txt: "v=DMARC1; p=bogus", ok: false},
		{txt: "v=DMARC1", ok: false},
		{txt: "v=DMARC1; p=reject; sp=bogus", ok: false},
		{txt: "v=DMARC1; p=bogus; rua=mailto:a@b.test", ok: true, p: "none", pct: -1},
		{txt: "v=DMARC1; p=reject; sp=bogus; rua=mailto:a@b.test!10m", ok: true, p: "none", pct: -1},
		{txt: "v=DMARC1; p=bogus; rua=not a uri", ok: false},
	}
	for _, tc := range tests {
		t.Run(tc.txt, func(t *testing.T) {
			r, ok, detail := parseRecord(tc.txt)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v (detail %q)", ok, tc.ok, detail)
			}
			if !ok {
				if detail == "" {
					t.Error("no detail for an ignored record")
				}
				return
			}
			pct := -1
			if r.rec.Percent != nil {
				pct = *r.rec.Percent
			}
			got := []any{string(r.rec.Policy), string(r.rec.SubdomainPolicy), r.np, pct, r.rec.DKIMAlignment == "s", r.rec.SPFAlignment == "s", len(r.dropped)}
			want := []any{tc.p, tc.sp, tc.np, tc.pct, tc.strictDKIM, tc.strictSPF, tc.dropped}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("got  p, sp, np, pct, adkim=s, aspf=s, dropped = %v\nwant %v", got, want)
				}
			}
		})
	}
}
