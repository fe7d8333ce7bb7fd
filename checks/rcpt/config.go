package rcpt

// The recipients section of the configuration file. It is declared here,
// beside the check it configures, and the config package holds a field of
// this type and calls Validate; this package does not import config.

import (
	"os"

	"mxguard/internal/confval"
	"mxguard/internal/yamlpos"
)

// Verify is a verification method: the type of Options.Verify and of the
// config's recipients.verify.
type Verify string

// Verification methods, the values of Options.Verify.
const (
	VerifyNone    Verify = "none"    // no verification: every Result is Unchecked
	VerifyBackend Verify = "backend" // probe the backend
	VerifyFile    Verify = "file"    // look the recipient up in the recipients file
	VerifyBoth    Verify = "both"    // the file first; probe the backend for what it does not list
)

// EnumValues lists the methods, for the config loader (yamlpos.Enum) and
// for New's error.
func (Verify) EnumValues() []string {
	return confval.Values(VerifyNone, VerifyBackend, VerifyFile, VerifyBoth)
}

// Config is the recipients section: how recipients are verified at RCPT.
type Config struct {
	// Verify (verify, default none) is the method.
	Verify Verify `yaml:"verify"`
	// File (file, required by file and both) is the recipients file; see
	// Options.File for its form.
	File string `yaml:"file" expect:"a file path"`
	// PositiveTTL (positive_ttl, default DefaultPositiveTTL = 1h, > 0) is
	// how long a known answer of the backend is cached.
	PositiveTTL confval.Duration `yaml:"positive_ttl"`
	// NegativeTTL (negative_ttl, default DefaultNegativeTTL = 5m, > 0) is
	// how long an unknown answer of the backend is cached.
	NegativeTTL confval.Duration `yaml:"negative_ttl"`
}

// DefaultConfig is the section as it is when the file leaves it out.
func DefaultConfig() Config {
	return Config{Verify: VerifyNone, PositiveTTL: confval.Dur(DefaultPositiveTTL), NegativeTTL: confval.Dur(DefaultNegativeTTL)}
}

// Validate reports, through d and at each key's position, the problems of
// the section decoded at path ("recipients"). It changes nothing. The
// file's content is checked by New, which "mxguard config check" runs.
func (c *Config) Validate(d *yamlpos.Decoder, path string) {
	if c.Verify == VerifyFile || c.Verify == VerifyBoth {
		if n := d.Node(path + ".file"); n == nil {
			d.Errorf(d.Node(path), "%s.file: verify: %s needs a recipients file", path, c.Verify)
		} else if fi, err := os.Stat(c.File); err != nil || !fi.Mode().IsRegular() {
			d.Errorf(n, "%s.file: no such file %s", path, yamlpos.Lit(c.File))
		}
	}
	confval.Positive(d, path+".positive_ttl", c.PositiveTTL)
	confval.Positive(d, path+".negative_ttl", c.NegativeTTL)
}
