package dnsbl

// An entry of the dnsbl list in the configuration file. It is declared
// here, beside the check it configures, and the config package holds a
// list of this type and calls Validate on each entry; this package does
// not import config.

import (
	"fmt"
	"net/netip"
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
// the entry decoded at path ("dnsbl[0]"). It changes nothing. Compile
// checks the rest (codes outside 127.0.0.0/8, a zone too long to query).
func (c *Config) Validate(d *yamlpos.Decoder, path string) {
	if n := d.Node(path + ".zone"); n != nil && !confval.ValidDomain(c.Zone) {
		d.Errorf(n, "%s.zone: expected a DNS zone like bl.example.net, got %s", path, yamlpos.Lit(c.Zone))
	}
	if n := d.Node(path + ".codes"); n != nil && !validCodes(c.Codes) {
		d.Errorf(n, "%s.codes: expected return codes like 127.0.0.2, 127.0.0.2-127.0.0.11 or 127.0.0.0/24, got %s", path, yamlpos.Lit(c.Codes))
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

// validCodes is the loader's syntax check of codes: addresses, ranges and
// prefixes, comma-separated. ParseCodes, run by Compile, adds what RFC
// 5782 requires of the values.
func validCodes(s string) bool {
	if strings.TrimSpace(s) == "" {
		return true
	}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if a, b, ok := strings.Cut(part, "-"); ok {
			x, err1 := netip.ParseAddr(strings.TrimSpace(a))
			y, err2 := netip.ParseAddr(strings.TrimSpace(b))
			if err1 != nil || err2 != nil || y.Less(x) {
				return false
			}
			continue
		}
		if _, err := netip.ParsePrefix(part); err == nil {
			continue
		}
		if _, err := netip.ParseAddr(part); err != nil {
			return false
		}
	}
	return true
}
