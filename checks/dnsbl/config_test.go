package dnsbl

import (
	"fmt"
	"strings"
	"testing"

	"mxguard/internal/yamlpos"
)

// TestConfigEntry: an entry reports a bad zone and bad codes at their
// positions, and compiles to the Zone the checker queries.
func TestConfigEntry(t *testing.T) {
	var f struct {
		DNSBL []Config `yaml:"dnsbl"`
	}
	src := "dnsbl:\n  - {zone: bl.example.net, weight: 3, codes: 127.0.0.2-127.0.0.4}\n  - {zone: \"a b\", codes: \"127.0.0.9-127.0.0.1\"}\n"
	root, err := yamlpos.ParseDocument("c.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	d := yamlpos.NewDecoder("c.yaml")
	d.Decode(root, &f)
	for i := range f.DNSBL {
		f.DNSBL[i].Validate(d, fmt.Sprintf("dnsbl[%d]", i))
	}
	var got []string
	for _, e := range d.Errors() {
		got = append(got, e.Error())
	}
	want := []string{
		`c.yaml:3:12: dnsbl[1].zone: expected a DNS zone like bl.example.net, got "a b"`,
		`c.yaml:3:26: dnsbl[1].codes: expected return codes like 127.0.0.2, 127.0.0.2-127.0.0.11 or 127.0.0.0/24, got 127.0.0.9-127.0.0.1: code range 127.0.0.9-127.0.0.1 ends before it starts`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors\n got %q\nwant %q", got, want)
	}
	z, err := f.DNSBL[0].Compile()
	if err != nil || z.Zone != "bl.example.net" || z.Weight != 3 || len(z.Match) != 1 || z.Match[0].String() != "127.0.0.2-127.0.0.4" {
		t.Errorf("Compile() = %+v, %v", z, err)
	}
	if _, err := (Config{Zone: "bl.example.net", Codes: "10.0.0.1"}).Compile(); err == nil {
		t.Errorf("Compile accepted a code outside 127.0.0.0/8")
	}
}
