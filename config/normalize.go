package config

import (
	"net/netip"
	"path/filepath"
	"strings"
)

// normalize fills in the defaults derived from other keys and puts the
// values that have several spellings into one, before validate checks
// them, so that every user of the config compares them as they are:
// domains lower-cased (DNS names are case-insensitive and RCPT TO domains
// arrive in any case), protected domains in mailaddr's form, a DNS server
// given as a bare IP with the standard port, and rules file paths resolved
// against dir, the directory of the config file. It is the only step
// between decoding and validate that changes the config; validate only
// reports.
func normalize(c *Config, dir string) {
	// Derived defaults: we introduce ourselves to the backend by the name
	// we use towards clients, and check its certificate for the host we
	// dial; spool.dir written as "" means the default.
	if c.Backend.HELO == "" {
		c.Backend.HELO = c.Hostname
	}
	if c.Backend.TLSServerName == "" {
		if network, addr := c.Backend.Kind(); network == "tcp" {
			if host, _, err := splitHostPort(addr); err == nil {
				c.Backend.TLSServerName = host
			}
		}
	}
	if c.Spool.Dir == "" {
		c.Spool.Dir = Default().Spool.Dir
	}
	for i, dom := range c.Domains {
		c.Domains[i] = strings.ToLower(dom)
	}
	c.Headers.Normalize()
	normalizeState(&c.State)
	// Held mail lives with the rest of what outlives a process unless the
	// file says otherwise: instances on one host that each have their own
	// state.dir then each have their own held mail too.
	c.Hold.Normalize(c.State.Dir)
	c.Greylist.Normalize()
	for i, srv := range c.DNS.Servers {
		if a, err := netip.ParseAddr(srv); err == nil && a.Zone() == "" {
			c.DNS.Servers[i] = netip.AddrPortFrom(a, 53).String()
		}
	}
	for i, p := range c.Rules {
		if p != "" && !filepath.IsAbs(p) {
			c.Rules[i] = filepath.Join(dir, p)
		}
	}
}
