package headers

import (
	"strings"
	"testing"

	"mxguard/internal/yamlpos"
)

// TestConfigSection: the section decodes into its defaults, is normalised,
// and reports each bad value at its key's position under the path it was
// given.
func TestConfigSection(t *testing.T) {
	var f struct {
		Headers Config `yaml:"headers"`
	}
	f.Headers = DefaultConfig()
	src := "headers:\n  protected_domains: [Bank.Test., x_y]\n  max_fields: 5\n"
	root, err := yamlpos.ParseDocument("c.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	d := yamlpos.NewDecoder("c.yaml")
	d.Decode(root, &f)
	f.Headers.Normalize()
	f.Headers.Validate(d, "headers")
	var got []string
	for _, e := range d.Errors() {
		got = append(got, e.Error())
	}
	want := []string{
		`c.yaml:2:35: headers.protected_domains[1]: expected a domain name, got x_y`,
		`c.yaml:3:15: headers.max_fields: expected an integer >= 10, got 5`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors\n got %q\nwant %q", got, want)
	}
	if f.Headers.ProtectedDomains[0] != "bank.test" || f.Headers.MaxBytes != DefaultMaxBytes {
		t.Errorf("section %+v: protected domain not normalised or max_bytes not the default", f.Headers)
	}
	if o := f.Headers.Options(); o.MaxBytes != DefaultMaxBytes || o.MaxFields != 5 || len(o.Protected) != 2 {
		t.Errorf("Options() = %+v", o)
	}
}
