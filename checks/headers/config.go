package headers

// The headers section of the configuration file. It is declared here,
// beside the check it configures, and the config package holds a field of
// this type and calls Normalize and Validate; this package does not import
// config.

import (
	"fmt"

	"mxguard/internal/confval"
	"mxguard/internal/mailaddr"
	"mxguard/internal/yamlpos"
)

// MaxSectionBytes is the fixed limit on a message's header section
// (policy.MaxHeaderBytes): a longer one is refused with 552 whatever the
// rules say, so headers.max_bytes cannot be above it.
const MaxSectionBytes = 256 << 10

// Config is the headers section: the header checks' limits and the domains
// they protect.
type Config struct {
	// ProtectedDomains (protected_domains, default empty) are domains,
	// besides our own, whose names in a From display name with an address
	// elsewhere count as spoofing. Normalize puts them in one form
	// (mailaddr.NormalizeDomain).
	ProtectedDomains []string `yaml:"protected_domains" expect:"a list of domain names"`
	// MaxBytes (max_bytes, default DefaultMaxBytes = 64KiB, >= 1024,
	// <= MaxSectionBytes) is the largest header section the check
	// passes; a larger one is TooBig.
	MaxBytes confval.ByteSize `yaml:"max_bytes"`
	// MaxFields (max_fields, default DefaultMaxFields = 500, >= 10) is
	// the most header fields the check passes; more is TooBig.
	MaxFields int `yaml:"max_fields"`
}

// DefaultConfig is the section as it is when the file leaves it out.
func DefaultConfig() Config {
	return Config{MaxBytes: DefaultMaxBytes, MaxFields: DefaultMaxFields}
}

// Normalize puts the protected domains in the one form the check compares
// them in, before Validate checks them.
func (c *Config) Normalize() {
	for i, dom := range c.ProtectedDomains {
		c.ProtectedDomains[i] = mailaddr.NormalizeDomain(dom)
	}
}

// Validate reports, through d and at each key's position, the problems of
// the section decoded at path ("headers"). It changes nothing.
func (c *Config) Validate(d *yamlpos.Decoder, path string) {
	for i, dom := range c.ProtectedDomains {
		if n := d.Node(fmt.Sprintf("%s.protected_domains[%d]", path, i)); n != nil && !confval.ValidDomain(dom) {
			d.Errorf(n, "%s.protected_domains[%d]: expected a domain name, got %s", path, i, yamlpos.Lit(dom))
		}
	}
	confval.AtLeast(d, path+".max_bytes", "a size in bytes", int64(c.MaxBytes), 1024)
	if n := d.Node(path + ".max_bytes"); n != nil && int64(c.MaxBytes) > MaxSectionBytes {
		// Past it the message is refused whatever the rules say.
		d.Errorf(n, "%s.max_bytes: expected a size in bytes <= %d (%s, the fixed limit), got %s", path, MaxSectionBytes, confval.ByteSize(MaxSectionBytes), yamlpos.Lit(n.Value))
	}
	confval.AtLeast(d, path+".max_fields", "an integer", int64(c.MaxFields), 10)
}

// Options are the check's options for c; the caller adds its own domains
// and, per message, SMTPUTF8 and From.
func (c Config) Options() Options {
	return Options{MaxBytes: int(c.MaxBytes), MaxFields: c.MaxFields, Protected: c.ProtectedDomains}
}
