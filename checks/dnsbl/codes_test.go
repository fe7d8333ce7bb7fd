package dnsbl

import (
	"math"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestParseCodes(t *testing.T) {
	a := netip.MustParseAddr
	tests := []struct {
		in      string
		want    []CodeRange
		wantErr string // a substring of the error; "" for none
	}{
		{in: "127.0.0.2", want: []CodeRange{{a("127.0.0.2"), a("127.0.0.2")}}},
		{in: "127.0.0.2-127.0.0.11", want: []CodeRange{{a("127.0.0.2"), a("127.0.0.11")}}},
		{in: "127.0.0.0/24", want: []CodeRange{{a("127.0.0.0"), a("127.0.0.255")}}},
		{in: "127.0.0.0/8", want: []CodeRange{{a("127.0.0.0"), a("127.255.255.255")}}},
		{in: "127.0.0.4/30", want: []CodeRange{{a("127.0.0.4"), a("127.0.0.7")}}},
		{in: "127.0.0.9/32", want: []CodeRange{{a("127.0.0.9"), a("127.0.0.9")}}},
		{in: "127.0.0.3-127.0.0.3", want: []CodeRange{{a("127.0.0.3"), a("127.0.0.3")}}},
		{
			in: " 127.0.0.2, 127.0.0.4-127.0.0.7 127.0.1.0/24\t,127.0.0.10 ",
			want: []CodeRange{
				{a("127.0.0.2"), a("127.0.0.2")},
				{a("127.0.0.4"), a("127.0.0.7")},
				{a("127.0.1.0"), a("127.0.1.255")},
				{a("127.0.0.10"), a("127.0.0.10")},
			},
		},

		{in: "", wantErr: "dnsbl: no return codes"},
		{in: " , ", wantErr: "dnsbl: no return codes"},
		{in: "127.0.0.2,,127.0.0.3", wantErr: "empty item"},
		{in: "127.0.0.2, ,127.0.0.3", wantErr: "empty item"},
		{in: "127.0.0.2,", wantErr: "empty item"},
		{in: "127.0.0", wantErr: `dnsbl: code "127.0.0"`},
		{in: "127.0.0.256", wantErr: `dnsbl: code "127.0.0.256"`},
		{in: "localhost", wantErr: `dnsbl: code "localhost"`},
		{in: "10.0.0.1", wantErr: "outside 127.0.0.0/8"},
		{in: "126.0.0.0-127.0.0.5", wantErr: "126.0.0.0 is outside 127.0.0.0/8"},
		{in: "126.0.0.0/7", wantErr: "outside 127.0.0.0/8"},
		{in: "127.0.0.0/7", wantErr: "did you mean 126.0.0.0/7?"},
		{in: "127.0.0.11-127.0.0.2", wantErr: "ends before it starts"},
		{in: "127.0.0.2-", wantErr: `code range "127.0.0.2-"`},
		{in: "127.0.0.2-127.0.0.3-127.0.0.4", wantErr: `code range`},
		{in: "127.0.0.1/24", wantErr: "host bits set (did you mean 127.0.0.0/24?)"},
		{in: "127.0.0.0/33", wantErr: `code prefix "127.0.0.0/33"`},
		{in: "::1", wantErr: "not an IPv4 address"},
		{in: "::ffff:127.0.0.2", wantErr: "not an IPv4 address"},
		{in: "::/0", wantErr: "not IPv4"},
		// Every bad item is reported, not just the first.
		{in: "127.0.0.2,bogus,10.0.0.1", wantErr: "dnsbl: code \"bogus\": ParseAddr(\"bogus\"): unable to parse IP\ndnsbl: code 10.0.0.1 is outside 127.0.0.0/8 (RFC 5782 §2.1)"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseCodes(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseCodes(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				if got != nil {
					t.Errorf("ParseCodes(%q) returned %v with its error", tt.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseCodes(%q): %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseCodes(%q) =\n  %v\nwant\n  %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestCodeRangeContains(t *testing.T) {
	r := mustCodes(t, "127.0.0.2-127.0.0.11")[0]
	for code, want := range map[string]bool{
		"127.0.0.1": false, "127.0.0.2": true, "127.0.0.10": true,
		"127.0.0.11": true, "127.0.0.12": false, "127.0.0.20": false,
	} {
		if got := r.Contains(netip.MustParseAddr(code)); got != want {
			t.Errorf("%v.Contains(%s) = %v, want %v", r, code, got, want)
		}
	}
}

func TestZoneValidate(t *testing.T) {
	a := netip.MustParseAddr
	tests := []struct {
		name    string
		zone    Zone
		wantErr string
	}{
		{name: "ok", zone: Zone{Zone: "zen.spamhaus.org", Weight: 5}},
		{name: "ok fqdn", zone: Zone{Zone: "list.dnswl.org.", Weight: -5, Match: []CodeRange{{a("127.0.10.0"), a("127.0.10.255")}}}},
		{name: "empty", zone: Zone{}, wantErr: `zone "" is not a domain name`},
		{name: "root", zone: Zone{Zone: "."}, wantErr: "not a domain name"},
		{name: "leading dot", zone: Zone{Zone: ".bl.test"}, wantErr: "not a domain name"},
		{name: "empty label", zone: Zone{Zone: "bl..test"}, wantErr: "not a domain name"},
		{name: "too long", zone: Zone{Zone: strings.Repeat("abcdefghi.", 20) + "test"}, wantErr: "too long"},
		{name: "NaN weight", zone: Zone{Zone: "bl.test", Weight: math.NaN()}, wantErr: "not a finite number"},
		{name: "infinite weight", zone: Zone{Zone: "bl.test", Weight: math.Inf(-1)}, wantErr: "not a finite number"},
		{name: "bad range", zone: Zone{Zone: "bl.test", Match: []CodeRange{{a("127.0.0.9"), a("127.0.0.2")}}}, wantErr: "ends before it starts"},
		{name: "zero range", zone: Zone{Zone: "bl.test", Match: []CodeRange{{}}}, wantErr: "not an IPv4 address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.zone.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Validate = %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
}

// FuzzParseCodes checks that whatever ParseCodes accepts is valid and
// survives a round trip through CodeRange.String.
func FuzzParseCodes(f *testing.F) {
	for _, s := range []string{"127.0.0.2", "127.0.0.2-127.0.0.11", "127.0.0.0/24", "127.0.0.2, 127.0.1.0/30", "10.0.0.1", "::1", "127.0.0.1/24"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseCodes(s)
		if err != nil {
			return
		}
		parts := make([]string, len(got))
		for i, r := range got {
			if err := r.validate(); err != nil {
				t.Fatalf("ParseCodes(%q) gave invalid %v: %v", s, r, err)
			}
			parts[i] = r.String()
		}
		again, err := ParseCodes(strings.Join(parts, ","))
		if err != nil || !reflect.DeepEqual(again, got) {
			t.Fatalf("round trip of %q: %v, %v; want %v", s, again, err, got)
		}
	})
}
