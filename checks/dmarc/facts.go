package dmarc

import (
	"context"
	"errors"
	"net"

	"mxguard/checks/check"
	"mxguard/checks/dkim"
	"mxguard/checks/resolver"
	spfcheck "mxguard/checks/spf"
)

// Facts are the DMARC check's facts (RFC 7489), as rules read them.
type Facts struct {
	Result  string `expr:"result" json:"result" doc:"the DMARC result (permerror: the From header does not hold exactly one address; \"\" when DMARC did not run)" values:"pass,fail,none,temperror,permerror,\"\""`
	Policy  string `expr:"policy" json:"policy" doc:"the policy the record asks for the From domain (p, sp, or np for a non-existent subdomain), before pct sampling (\"\" without a record)" values:"none,quarantine,reject,\"\""`
	Percent int    `expr:"percent" json:"percent" doc:"the record's pct (0 without a record)"`
	// AppliedPolicy and Sampled are pct sampling's outcome (RFC 7489
	// §6.6.4), drawn from the From domain and the Message-ID (see
	// Sample), which the log records too: a replay of a line without
	// them draws them again.
	AppliedPolicy string `expr:"applied_policy" json:"applied_policy" doc:"the policy after pct sampling (RFC 7489 §6.6.4): policy when the message is in the sample, else the next weaker one (reject becomes quarantine, quarantine becomes none); \"\" without a record" values:"none,quarantine,reject,\"\""`
	Sampled       bool   `expr:"sampled" json:"sampled" doc:"the message is in the pct sample, drawn from a hash of the From domain and the Message-ID (always with pct=100, never with pct=0)"`
	SPFAligned    bool   `expr:"spf_aligned" json:"spf_aligned" doc:"SPF passed for a domain aligned with From"`
	DKIMAligned   bool   `expr:"dkim_aligned" json:"dkim_aligned" doc:"a DKIM signature aligned with From passed"`
	Detail        string `expr:"detail" json:"detail" doc:"what DMARC found, for people"`
}

// Define builds the DMARC check: at data, from the From domain and the
// results of the SPF and DKIM checks it depends on. It needs DNS.
func (Facts) Define(env check.Env) check.Def {
	d := check.Def{Stage: check.Data, Deps: []string{"spf", "dkim"}}
	r := env.Resolver
	if r == nil {
		return d
	}
	c := &Checker{Lookup: r.LookupTXT, Exists: func(ctx context.Context, domain string) (bool, error) {
		return exists(ctx, r, domain)
	}}
	d.Run = func(ctx context.Context, v check.View) check.Result {
		in := Input{Header: v.Header(), MessageID: v.MessageID()}
		d, err := v.From()
		in.From = &ParsedFrom{Domain: d, Err: err}
		if s, ok := v.Facts("spf").(spfcheck.Facts); ok {
			in.SPFResult, in.SPFDomain = s.Result, s.Domain
		}
		if k, ok := v.Facts("dkim").(dkim.Facts); ok {
			for _, s := range k.Signatures {
				in.DKIM = append(in.DKIM, DKIMSig{Domain: s.Domain, Result: s.Result})
			}
		}
		res := c.Check(ctx, in)
		return check.Result{Result: res.Result, Detail: res.Detail, Facts: Facts{Result: res.Result, Policy: res.Policy,
			Percent: res.Percent, AppliedPolicy: res.AppliedPolicy, Sampled: res.Sampled,
			SPFAligned: res.SPFAligned, DKIMAligned: res.DKIMAligned, Detail: res.Detail}}
	}
	d.Quick = check.CacheFirst(d.Run)
	return d
}

// exists reports whether domain has an address or an MX record (RFC 9091
// §2), for the np= policy of non-existent subdomains.
func exists(ctx context.Context, r *resolver.Resolver, domain string) (bool, error) {
	_, err := r.LookupIPAddr(ctx, domain)
	if err == nil {
		return true, nil
	}
	var de *net.DNSError
	if !errors.As(err, &de) || !de.IsNotFound {
		return false, err
	}
	_, err = r.LookupMX(ctx, domain)
	if err == nil {
		return true, nil
	}
	if errors.As(err, &de) && de.IsNotFound {
		return false, nil
	}
	return false, err
}
