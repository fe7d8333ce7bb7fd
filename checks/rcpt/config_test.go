package rcpt

import (
	"strings"
	"testing"

	"mxguard/internal/yamlpos"
)

// TestConfigSection: the section takes its defaults from this package,
// and reports a missing file and a zero lifetime at their positions.
func TestConfigSection(t *testing.T) {
	if c := DefaultConfig(); c.Verify != VerifyNone || c.PositiveTTL.Duration != DefaultPositiveTTL || c.NegativeTTL.Duration != DefaultNegativeTTL {
		t.Fatalf("DefaultConfig() = %+v", c)
	}
	var f struct {
		Recipients Config `yaml:"recipients"`
	}
	f.Recipients = DefaultConfig()
	root, err := yamlpos.ParseDocument("c.yaml", []byte("recipients:\n  verify: both\n  negative_ttl: 0s\n"))
	if err != nil {
		t.Fatal(err)
	}
	d := yamlpos.NewDecoder("c.yaml")
	d.Decode(root, &f)
	f.Recipients.Validate(d, "recipients")
	var got []string
	for _, e := range d.Errors() {
		got = append(got, e.Error())
	}
	want := []string{
		`c.yaml:2:3: recipients.file: verify: both needs a recipients file`,
		`c.yaml:3:17: recipients.negative_ttl: expected a duration greater than 0, got "0s"`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors\n got %q\nwant %q", got, want)
	}
}
