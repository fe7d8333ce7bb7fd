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
	// Zones (zones, default empty: the check is off) are the lists asked.
	// A domain is asked as DOMAIN.ZONE (RFC 5782 §2.3), an address as its
	// reversed octets or nibbles (§2.1, §2.4).
	Zones []ZoneConfig `yaml:"zones" expect:"a list of URI block lists"`
}

// ZoneConfig is one entry of uribl.zones: the keys of a dnsbl entry (zone,
// weight, codes), or bitmask instead of codes for a list whose answer is
// a bitmask of its sub-lists.
type ZoneConfig struct {
	// Zone (zone, required) is the list's domain, e.g. dbl.example.net.
	Zone string `yaml:"zone" required:"true" expect:"a DNS list zone like dbl.example.net"`
	// Weight (weight, default 0) is added to the score when the list
	// lists any domain or address of the message.
	Weight float64 `yaml:"weight"`
	// Codes (codes, default "" = any) are the return codes that count,
	// as for dnsbl: "127.0.1.2-127.0.1.99", comma-separated.
	Codes string `yaml:"codes"`
	// Bitmask (bitmask, default 0 = not a bitmask list, 1 to 255) makes
	// an answer a listing when its last octet has any of these bits:
	// SURBL-style lists answer 127.0.0.X, X the sum of the bits of the
	// sub-lists that hold the domain. Exclusive with Codes.
	Bitmask int64 `yaml:"bitmask" expect:"a bitmask like 0x4c or 76"`
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

// Validate reports the problems of the entry decoded at path
// ("uribl.zones[0]"): those of a dnsbl entry, and a bitmask out of range
// or given with codes.
func (c *ZoneConfig) Validate(d *yamlpos.Decoder, path string) {
	dc := c.dnsbl()
	dc.Validate(d, path)
	bn := d.Node(path + ".bitmask")
	if bn == nil {
		return
	}
	if c.Bitmask < 1 || c.Bitmask > 0xff {
		d.Errorf(bn, "%s.bitmask: expected the bits of the answer's last octet, 1 to 255 (0x01 to 0xff), got %s", path, yamlpos.Lit(bn.Value))
	}
	if d.Node(path+".codes") != nil {
		d.Errorf(bn, "%s.bitmask: bitmask and codes exclude each other: codes for a list whose answers are values (127.0.1.2), bitmask for one whose answers are sums of bits (SURBL)", path)
	}
}

// dnsbl is the entry without its bitmask.
func (c ZoneConfig) dnsbl() dnsbl.Config {
	return dnsbl.Config{Zone: c.Zone, Weight: c.Weight, Codes: c.Codes}
}

// Compile turns the entry into the Zone the checker asks.
func (c ZoneConfig) Compile() (Zone, error) {
	z, err := c.dnsbl().Compile()
	if err != nil {
		return Zone{}, fmt.Errorf("uribl: %w", err)
	}
	if c.Bitmask < 0 || c.Bitmask > 0xff || c.Bitmask != 0 && len(z.Match) > 0 {
		return Zone{}, fmt.Errorf("uribl: zone %s: bitmask %#x with codes %q", c.Zone, c.Bitmask, c.Codes)
	}
	return Zone{Zone: z, Bitmask: byte(c.Bitmask)}, nil
}

// compile returns the zones of c.
func (c Config) compile() ([]Zone, error) {
	zones := make([]Zone, 0, len(c.Zones))
	for _, zc := range c.Zones {
		z, err := zc.Compile()
		if err != nil {
			return nil, err
		}
		zones = append(zones, z)
	}
	return zones, nil
}
