package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"mxguard/checks/dnsbl"
	"mxguard/checks/uribl"
	"mxguard/config"
)

// printURLs prints, for check, the URLs of the message by host: each
// registered domain or address with how many URLs link to it, the zones of
// uribl.zones that list it with the code that answered and the zone's
// weight, the lookups that failed, and the hosts past uribl.max_domains
// that were not looked up. It extracts and looks up itself, whatever the
// rules needed, through the resolver the pipeline used: its cache gives
// the answers the verdict was made with.
func printURLs(w io.Writer, cfg *config.Config, lookup dnsbl.Lookup, content func() (io.Reader, error)) {
	r, err := content()
	if err != nil {
		fmt.Fprintf(w, "urls: (cannot read the message: %v)\n", err)
		return
	}
	ctx := context.Background()
	max := cfg.URIBL.MaxDomains
	if max < 1 {
		max = uribl.DefaultMaxDomains
	}
	found, err := uribl.Extract(ctx, r, max)
	if err != nil {
		fmt.Fprintf(w, "urls: (cannot read the message: %v)\n", err)
		return
	}
	var zones []string
	for _, z := range cfg.URIBL.Zones {
		zones = append(zones, z.Zone)
	}
	note := "no uribl zones configured: not looked up"
	if len(zones) > 0 {
		note = "looked up in " + strings.Join(zones, ", ")
	}
	fmt.Fprintf(w, "urls: %s to %d domains and addresses (%s)\n", urlCount(found.URLs), len(found.Hosts), note)
	res := uribl.Result{Found: found}
	if len(zones) > 0 {
		ch, err := uribl.NewChecker(cfg.URIBL, lookup)
		if err != nil {
			fmt.Fprintf(w, "  (cannot look up: %v)\n", err)
			return
		}
		res = ch.Lookups(ctx, found)
	}
	for _, h := range found.Hosts {
		fmt.Fprintf(w, "  %-32s %-7s  %s\n", h.Name, urlCount(h.URLs), hostResult(h, res, len(zones) > 0, max))
	}
	if found.Truncated {
		fmt.Fprintf(w, "  truncated: more than uribl.max_domains (%d) domains or addresses, or a bound of the walk: the rest was not looked up\n", max)
	}
	if len(res.Listed) > 0 {
		fmt.Fprintf(w, "  score %g (listed by %s)\n", res.Score, strings.Join(res.Listed, ", "))
	}
}

// hostResult says what the lists said of h.
func hostResult(h uribl.Host, res uribl.Result, lookedUp bool, max int) string {
	switch {
	case h.Skipped:
		return fmt.Sprintf("not looked up (past uribl.max_domains %d)", max)
	case !lookedUp:
		return "-"
	}
	var out []string
	for _, l := range res.Listings {
		if l.Name == h.Name {
			out = append(out, fmt.Sprintf("listed by %s %s (weight %g)", l.Zone, strings.Join(l.Codes, ","), l.Weight))
		}
	}
	for _, e := range res.Errors {
		if rest, ok := strings.CutPrefix(e, h.Name+"="); ok {
			out = append(out, "failed: "+rest)
		}
	}
	if len(out) == 0 {
		return "not listed"
	}
	return strings.Join(out, "; ")
}

// urlCount is "1 URL" or "3 URLs".
func urlCount(n int) string {
	if n == 1 {
		return "1 URL"
	}
	return fmt.Sprintf("%d URLs", n)
}
