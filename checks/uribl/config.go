package uribl

// The uribl section of the configuration file. It is declared here, beside
// the check it configures; the config package holds a field of this type
// and calls Validate, and this package does not import config.

import (
	"fmt"

	"mxguard/checks/dnsbl"
	"mxguard/internal/confval"
	"mxguard/internal/yamlpos"
)

// DefaultMaxDomains is uribl.max_domains when the file leaves it out: more
// than the links of an ordinary message, few enough that a message of a
// thousand links costs a bounded number of queries per list.
const DefaultMaxDomains = 20

// Config is the uribl section.
type Config struct {
	// MaxDomains (max_domains, default DefaultMaxDomains, >= 1) is the
	// most distinct registered domains (and, apart, URL addresses) of one
	// message looked up; the rest are not (uribl.truncated).
	MaxDomains int `yaml:"max_domains"`
	// Zones (zones, default empty: the check is off) are the lists asked,
	// each as a dnsbl entry: zone, weight, codes. A domain is asked as
	// DOMAIN.ZONE (RFC 5782 §2.3), an address as its reversed octets.
	Zones []dnsbl.Config `yaml:"zones" expect:"a list of URI block lists"`
}

// DefaultConfig is the section as it is when the file leaves it out.
func DefaultConfig() Config { return Config{MaxDomains: DefaultMaxDomains} }

// Validate reports, through d and at each key's position, the problems of
// the section decoded at path ("uribl"). It changes nothing.
func (c *Config) Validate(d *yamlpos.Decoder, path string) {
	confval.AtLeast(d, path+".max_domains", "an integer", int64(c.MaxDomains), 1)
	for i := range c.Zones {
		c.Zones[i].Validate(d, fmt.Sprintf("%s.zones[%d]", path, i))
	}
}

// compile returns the zones of c.
func (c Config) compile() ([]dnsbl.Zone, error) {
	zones := make([]dnsbl.Zone, 0, len(c.Zones))
	for _, zc := range c.Zones {
		z, err := zc.Compile()
		if err != nil {
			return nil, fmt.Errorf("uribl: %w", err)
		}
		zones = append(zones, z)
	}
	return zones, nil
}
