package uribl

import (
	"context"
	"fmt"
	"strings"

	"mxguard/checks/check"
	"mxguard/checks/dnsbl"
)

// Facts are the URL block list check's facts, as rules read them.
type Facts struct {
	URLs          int      `expr:"urls" json:"urls" doc:"the number of URLs in the message's text and HTML parts (URLs inside URLs count too)"`
	Domains       []string `expr:"domains" json:"domains,omitempty" doc:"the distinct registered domains of the URLs' hosts (public suffix list), lower case A-labels, at most uribl.max_domains"`
	IPs           []string `expr:"ips" json:"ips,omitempty" doc:"the distinct addresses of URLs whose host is an IP address, at most uribl.max_domains"`
	Listed        []string `expr:"listed" json:"listed,omitempty" doc:"the zones that list any of the domains or addresses, in config order"`
	ListedDomains []string `expr:"listed_domains" json:"listed_domains,omitempty" doc:"the listings, as domain=zone (or address=zone)"`
	Codes         []string `expr:"codes" json:"codes,omitempty" doc:"the listings with the return codes that counted, as domain=zone=code (a bitmask list's code holds the sub-lists' bits: 127.0.0.68 is 64+4)"`
	Score         float64  `expr:"score" json:"score" doc:"the sum of the weights of the zones that list any domain or address (each zone once)"`
	Errors        []string `expr:"errors" json:"errors,omitempty" doc:"lookups that failed (temperror, or a list's error code): not listings"`
	Truncated     bool     `expr:"truncated" json:"truncated,omitempty" doc:"more domains or addresses than uribl.max_domains, or more text than is read: the rest was not looked up"`
}

// Define builds the URL block list check: at data, on the message as the
// backend receives it, against the zones of its config section. It needs
// DNS and at least one zone.
func (Facts) Define(env check.Env) check.Def {
	d := check.Def{Stage: check.Data}
	c, ok := env.Section.(Config)
	if !ok || env.Resolver == nil || len(c.Zones) == 0 {
		return d
	}
	ch, err := NewChecker(c, env.Resolver)
	if err != nil {
		// The loader compiles every entry (Config.Validate): a build
		// defect, which must show rather than pass every message.
		d.Run = func(context.Context, check.View) check.Result { return check.Errorf(check.Temperror, "%v", err) }
		return d
	}
	d.Run = func(ctx context.Context, v check.View) check.Result { return ch.Check(ctx, v) }
	return d
}

// NewChecker returns the checker of the section c, asking l: what the
// check runs, and what "mxguard check" shows the URLs with.
func NewChecker(c Config, l dnsbl.Lookup) (*Checker, error) {
	if c.MaxDomains < 1 {
		c.MaxDomains = DefaultMaxDomains
	}
	zones, err := c.compile()
	if err != nil {
		return nil, err
	}
	return &Checker{Lookup: l, Zones: zones, MaxDomains: c.MaxDomains}, nil
}

// Check extracts the URLs of v's message and looks them up.
func (c *Checker) Check(ctx context.Context, v check.View) check.Result {
	r, err := v.Content()
	if err != nil {
		return check.Errorf(check.Temperror, "reading the message: %v", err)
	}
	f, err := Extract(ctx, r, c.MaxDomains)
	if err != nil {
		return check.Errorf(check.Temperror, "URL extraction: %v", err)
	}
	return c.Lookups(ctx, f).result()
}

// result is the check's result and facts for res.
func (res Result) result() check.Result {
	f := Facts{URLs: res.URLs, Domains: res.Domains, Listed: res.Listed, ListedDomains: res.ListedDomains(),
		Codes: res.Codes(), Score: res.Score, Errors: res.Errors, Truncated: res.Truncated}
	for _, a := range res.IPs {
		f.IPs = append(f.IPs, a.String())
	}
	result := "none"
	detail := fmt.Sprintf("%d URLs, %d domains, %d addresses", res.URLs, len(res.Domains), len(res.IPs))
	if len(res.Listed) > 0 {
		result = "listed"
		detail += fmt.Sprintf("; score %g: %s", res.Score, strings.Join(f.Codes, ", "))
	}
	if len(res.Errors) > 0 {
		detail += "; failed: " + strings.Join(res.Errors, ", ")
	}
	return check.Result{Result: result, Detail: detail, Facts: f}
}
