package dnsbl

// An entry of the dnsbl list in the configuration file. It is declared
// here, beside the check it configures, and the config package holds a
// list of this type and calls Validate on each entry; this package does
// not import config.

import (
	"fmt"
	"strings"

	"mxguard/internal/confval"
	"mxguard/internal/yamlpos"
)

// Config is one DNS block list (positive weight) or allow list (negative)
// as the file writes it. An entry has no defaults beyond Go's zero values:
// weight 0, codes "" (any code).
type Config struct {
	// Zone (zone, required) is the list's domain, e.g. bl.example.net.
	Zone string `yaml:"zone" required:"true" expect:"a DNS list zone like bl.example.net"`
	// Weight (weight, default 0) is added to the score when the list
	// lists the client.
	Weight float64 `yaml:"weight"`
	// Codes (codes, default "" = any) are the return codes that count as
	// a listing: "127.0.0.2", "127.0.0.2-127.0.0.11", "127.0.0.0/24",
	// comma-separated.
	Codes string `yaml:"codes"`
}

// Validate reports, through d and at each key's position, the problems of
// the entry decoded at path ("dnsbl[0]"). It changes nothing. It reads the
// codes with ParseCodes and checks the zone with Zone.Validate, the very
// functions Compile uses, so an entry the loader accepts always compiles
// (the check compiles its section when it is built).
func (c *Config) Validate(d *yamlpos.Decoder, path string) {
	zn, cn := d.Node(path+".zone"), d.Node(path+".codes")
	if zn != nil && !confval.ValidDomain(c.Zone) {
		d.Errorf(zn, "%s.zone: expected a DNS zone like bl.example.net, got %s", path, yamlpos.Lit(c.Zone))
		zn = nil
	}
	if cn != nil && strings.TrimSpace(c.Codes) != "" {
		if _, err := ParseCodes(c.Codes); err != nil {
			d.Errorf(cn, "%s.codes: expected return codes like 127.0.0.2, 127.0.0.2-127.0.0.11 or 127.0.0.0/24, got %s: %s",
				path, yamlpos.Lit(c.Codes), strings.ReplaceAll(err.Error(), "dnsbl: ", ""))
		}
	}
	if zn != nil {
		if err := (Zone{Zone: c.Zone, Weight: c.Weight}).Validate(); err != nil {
			d.Errorf(zn, "%s.zone: %s", path, strings.TrimPrefix(err.Error(), "dnsbl: "))
		}
	}
}

// Compile turns the entry into the Zone the checker queries.
func (c Config) Compile() (Zone, error) {
	zone := Zone{Zone: c.Zone, Weight: c.Weight}
	if strings.TrimSpace(c.Codes) != "" {
		codes, err := ParseCodes(c.Codes)
		if err != nil {
			return Zone{}, fmt.Errorf("dnsbl %s: %w", c.Zone, err)
		}
		zone.Match = codes
	}
	if err := zone.Validate(); err != nil {
		return Zone{}, fmt.Errorf("dnsbl %s: %w", c.Zone, err)
	}
	return zone, nil
}
