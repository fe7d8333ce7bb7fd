package greylist

// The greylist section of the configuration file. It is declared here,
// beside the check it configures, and the config package holds a field of
// this type and calls Validate; this package does not import config.

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"mxguard/internal/confval"
	"mxguard/internal/mailaddr"
	"mxguard/internal/yamlpos"
)

// The section's defaults: the values postgrey and rspamd made usual.
const (
	// DefaultDelay is how long after its first attempt a triplet may
	// pass: most spam engines never retry, and real MTAs retry within
	// minutes (Postfix's minimal_backoff_time is 5m).
	DefaultDelay = 5 * time.Minute
	// DefaultRetryWindow is how long after the delay a triplet waits for
	// its retry before it is forgotten.
	DefaultRetryWindow = 24 * time.Hour
	// DefaultPassLifetime is how long a network that passed is not
	// greylisted again: longer than a month, so monthly senders stay
	// known.
	DefaultPassLifetime = 36 * 24 * time.Hour
)

// Config is the greylist section.
type Config struct {
	// Enabled (enabled, default false) turns greylisting on. It needs
	// the state store, which serve keeps; the default rules decide who
	// is greylisted.
	Enabled bool `yaml:"enabled"`
	// Delay (delay, default DefaultDelay = 5m, > 0) is how long after its
	// first attempt a triplet may pass.
	Delay confval.Duration `yaml:"delay"`
	// RetryWindow (retry_window, default DefaultRetryWindow = 24h, > 0)
	// is how long after Delay a triplet not retried is remembered.
	RetryWindow confval.Duration `yaml:"retry_window"`
	// PassLifetime (pass_lifetime, default DefaultPassLifetime = 36d,
	// > 0) is how long a client network that passed is not greylisted
	// again.
	PassLifetime confval.Duration `yaml:"pass_lifetime"`
	// Allow (allow) is who is never greylisted.
	Allow Allow `yaml:"allow"`
}

// Allow is who is never greylisted: the check answers "allowed".
type Allow struct {
	// Networks (networks, default empty) are client networks (CIDRs or
	// addresses).
	Networks []string `yaml:"networks" expect:"a list of CIDRs or IP addresses"`
	// SenderDomains (sender_domains, default empty) are envelope sender
	// domains; a subdomain of one matches too.
	SenderDomains []string `yaml:"sender_domains" expect:"a list of domain names"`
	// Recipients (recipients, default empty) are recipient addresses, or
	// whole domains (an entry without @).
	Recipients []string `yaml:"recipients" expect:"a list of addresses or domains"`
}

// DefaultConfig is the section as it is when the file leaves it out.
func DefaultConfig() Config {
	return Config{Delay: confval.Dur(DefaultDelay), RetryWindow: confval.Dur(DefaultRetryWindow),
		PassLifetime: confval.Dur(DefaultPassLifetime)}
}

// Normalize puts the allow list in the one form the check compares it in
// (lower case, domains as mailaddr.NormalizeDomain).
func (c *Config) Normalize() {
	for i, dom := range c.Allow.SenderDomains {
		c.Allow.SenderDomains[i] = mailaddr.NormalizeDomain(dom)
	}
	for i, r := range c.Allow.Recipients {
		c.Allow.Recipients[i] = normalizeRcptEntry(r)
	}
}

// normalizeRcptEntry is an allow-list recipient as the check compares it.
func normalizeRcptEntry(r string) string {
	r = strings.TrimSpace(r)
	if at := strings.LastIndexByte(r, '@'); at >= 0 {
		return strings.ToLower(r[:at]) + "@" + mailaddr.NormalizeDomain(r[at+1:])
	}
	return mailaddr.NormalizeDomain(r)
}

// Validate reports, through d and at each key's position, the problems of
// the section decoded at path ("greylist"). It changes nothing.
func (c *Config) Validate(d *yamlpos.Decoder, path string) {
	confval.Positive(d, path+".delay", c.Delay)
	confval.Positive(d, path+".retry_window", c.RetryWindow)
	confval.Positive(d, path+".pass_lifetime", c.PassLifetime)
	for i, s := range c.Allow.Networks {
		p := fmt.Sprintf("%s.allow.networks[%d]", path, i)
		if n := d.Node(p); n != nil {
			if _, err := parsePrefix(s); err != nil {
				d.Errorf(n, "%s: expected a CIDR like 192.0.2.0/24 or an IP address, got %s", p, yamlpos.Lit(s))
			}
		}
	}
	for i, dom := range c.Allow.SenderDomains {
		p := fmt.Sprintf("%s.allow.sender_domains[%d]", path, i)
		if n := d.Node(p); n != nil && !confval.ValidDomain(dom) {
			d.Errorf(n, "%s: expected a domain name, got %s", p, yamlpos.Lit(dom))
		}
	}
	for i, r := range c.Allow.Recipients {
		p := fmt.Sprintf("%s.allow.recipients[%d]", path, i)
		n := d.Node(p)
		if n == nil {
			continue
		}
		dom, local := r, ""
		if at := strings.LastIndexByte(r, '@'); at >= 0 {
			local, dom = r[:at], r[at+1:]
			if local == "" {
				dom = ""
			}
		}
		if !confval.ValidDomain(dom) {
			d.Errorf(n, "%s: expected an address like postmaster@example.org or a domain, got %s", p, yamlpos.Lit(r))
		}
	}
}

// parsePrefix reads a CIDR or a lone address (its own /32 or /128).
func parsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("greylist: %w", err)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("greylist: %w", err)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
