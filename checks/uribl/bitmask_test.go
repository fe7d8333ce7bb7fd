package uribl

import (
	"slices"
	"strings"
	"testing"

	"mxguard/internal/yamlpos"
)

// bitmaskLinks links to every name of multi.test (testdata/zones/uribl.zone)
// and one it does not hold.
var bitmaskLinks = msg("text/plain", "http://phish.example/ http://malware.example/ http://abuse.example/ "+
	"http://cracked.example/ http://both.example/ http://blocked.example/ http://rewritten.example/ http://clean.example/")

// TestBitmaskZone shows a SURBL-style list read by its bits: an answer is
// a listing when its last octet has a bit of the zone's bitmask, the code
// that answered is in the evidence, and 127.0.0.1 (the list refusing) and
// an answer outside 127.0.0.0/8 are errors whatever the mask.
func TestBitmaskZone(t *testing.T) {
	errs := []string{"blocked.example=multi.test: error code 127.0.0.1", "rewritten.example=multi.test: error code 192.0.2.80"}
	for _, c := range []struct {
		name    string
		bitmask int64
		codes   []string
	}{
		// 0x4c = 64 + 8 + 4: 127.0.0.68 (64+4) has two of them.
		{"0x4c", 0x4c, []string{"malware.example=multi.test=127.0.0.4", "abuse.example=multi.test=127.0.0.8", "both.example=multi.test=127.0.0.68"}},
		{"phishing only", 0x02, []string{"phish.example=multi.test=127.0.0.2"}},
		{"cracked only", 0x10, []string{"cracked.example=multi.test=127.0.0.16"}},
		{"64 only", 64, []string{"both.example=multi.test=127.0.0.68"}},
		// Bit 1 is 127.0.0.1's: a refusal, never a listing.
		{"bit 1", 0x01, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := Config{MaxDomains: 20, Zones: []ZoneConfig{{Zone: "multi.test", Weight: 10, Bitmask: c.bitmask}}}
			r, f := run(t, define(t, cfg), bitmaskLinks)
			if !slices.Equal(f.Codes, c.codes) {
				t.Errorf("codes %q, want %q", f.Codes, c.codes)
			}
			wantResult, wantScore, wantListed := "none", 0.0, []string(nil)
			if len(c.codes) > 0 {
				wantResult, wantScore, wantListed = "listed", 10, []string{"multi.test"}
			}
			if r.Result != wantResult || f.Score != wantScore || !slices.Equal(f.Listed, wantListed) {
				t.Errorf("result %q score %v listed %q, want %q %v %q", r.Result, f.Score, f.Listed, wantResult, wantScore, wantListed)
			}
			if !slices.Equal(f.Errors, errs) {
				t.Errorf("errors %q, want %q", f.Errors, errs)
			}
			for _, code := range c.codes {
				if !strings.Contains(r.Detail, code) {
					t.Errorf("detail %q does not name %s", r.Detail, code)
				}
			}
		})
	}
}

// TestRefusalNotListingWithCodes shows 127.0.0.1 an error in a list read
// by codes too, even when the codes cover it.
func TestRefusalNotListingWithCodes(t *testing.T) {
	cfg := Config{MaxDomains: 20, Zones: []ZoneConfig{{Zone: "multi.test", Weight: 10, Codes: "127.0.0.0/24"}}}
	r, f := run(t, define(t, cfg), msg("text/plain", "http://blocked.example/"))
	if r.Result != "none" || len(f.Codes) != 0 || !slices.Equal(f.Errors, []string{"blocked.example=multi.test: error code 127.0.0.1"}) {
		t.Errorf("result %q facts %+v", r.Result, f)
	}
}

// TestZoneConfig shows the bitmask key read in hex or decimal, and its
// errors at their file:line:col: out of range, or given with codes.
func TestZoneConfig(t *testing.T) {
	src := `uribl:
  zones:
    - {zone: multi.example, weight: 10, bitmask: 0x4c}
    - {zone: other.example, bitmask: 76}
    - {zone: both.example, codes: 127.0.0.2, bitmask: 0x04}
    - {zone: zero.example, bitmask: 0}
    - {zone: wide.example, bitmask: 0x100}
    - {zone: word.example, bitmask: phishing}
`
	var f struct {
		URIBL Config `yaml:"uribl"`
	}
	root, err := yamlpos.ParseDocument("c.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	d := yamlpos.NewDecoder("c.yaml")
	d.Decode(root, &f)
	f.URIBL.Validate(d, "uribl")
	var got []string
	for _, e := range d.Errors() {
		got = append(got, e.Error())
	}
	want := []string{
		`c.yaml:5:55: uribl.zones[2].bitmask: bitmask and codes exclude each other: codes for a list whose answers are values (127.0.1.2), bitmask for one whose answers are sums of bits (SURBL)`,
		`c.yaml:6:37: uribl.zones[3].bitmask: expected the bits of the answer's last octet, 1 to 255 (0x01 to 0xff), got 0`,
		`c.yaml:7:37: uribl.zones[4].bitmask: expected the bits of the answer's last octet, 1 to 255 (0x01 to 0xff), got 0x100`,
		`c.yaml:8:37: uribl.zones[5].bitmask: expected a bitmask like 0x4c or 76, got "phishing"`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors\n got %q\nwant %q", got, want)
	}
	for i := range 2 {
		z, err := f.URIBL.Zones[i].Compile()
		if err != nil || z.Bitmask != 0x4c || len(z.Match) != 0 {
			t.Errorf("zones[%d].Compile() = %+v, %v", i, z, err)
		}
	}
}
