package dnsbl

import (
	"context"
	"fmt"
	"strings"

	"mxguard/checks/check"
)

// Facts are the DNS list check's facts (RFC 5782), as rules read them.
type Facts struct {
	Score   float64  `expr:"score" json:"score" doc:"the sum of the weights of the lists that list the client (allow lists weigh negative)"`
	Listed  []string `expr:"listed" json:"listed" doc:"the zones that list the client, in config order"`
	Codes   []string `expr:"codes" json:"codes" doc:"the return codes, as zone=code"`
	Reasons []string `expr:"reasons" json:"reasons" doc:"the lists' TXT reasons, as zone: text"`
	Errors  []string `expr:"errors" json:"errors" doc:"lists that failed (a temporary failure or an error code): not listings"`
	// An allow list's hit is its own fact: a client on a block list and
	// an allow list would otherwise only show a lower score, and rules
	// that spare known senders (greylisting) need to say so.
	Allowed    bool     `expr:"allowed" json:"allowed" doc:"an allow list (a list with a negative weight) lists the client"`
	AllowLists []string `expr:"allow_lists" json:"allow_lists" doc:"the allow lists that list the client, in config order"`
}

// Define builds the DNS list check: at connect, for the client's address,
// against the lists of its config section ([]Config, or the compiled
// []Zone). It needs DNS and at least one list.
func (Facts) Define(env check.Env) check.Def {
	d := check.Def{Stage: check.Connect}
	zones, err := sectionZones(env.Section)
	if env.Resolver == nil || len(zones) == 0 && err == nil {
		return d
	}
	if err != nil {
		// The loader compiles every entry (Config.Validate): this is a
		// build defect, and it must show, not pass every client.
		d.Run = func(context.Context, check.View) check.Result { return check.Errorf(check.Temperror, "%v", err) }
		return d
	}
	c := &Checker{Lookup: env.Resolver, Zones: zones}
	d.Run = func(ctx context.Context, v check.View) check.Result {
		return c.Check(ctx, v.Client()).result()
	}
	d.Quick = check.CacheFirst(d.Run)
	return d
}

// sectionZones are the zones of the check's config section.
func sectionZones(section any) ([]Zone, error) {
	switch s := section.(type) {
	case []Zone:
		return s, nil
	case []Config:
		zones := make([]Zone, 0, len(s))
		for _, c := range s {
			z, err := c.Compile()
			if err != nil {
				return nil, err
			}
			zones = append(zones, z)
		}
		return zones, nil
	}
	return nil, nil
}

// result is the check's result and facts for res.
func (res Result) result() check.Result {
	f := Facts{Score: res.Score, Errors: res.Errors}
	for _, l := range res.Listed {
		f.Listed = append(f.Listed, l.Zone)
		if l.Weight < 0 {
			f.Allowed = true
			f.AllowLists = append(f.AllowLists, l.Zone)
		}
		for _, code := range l.Codes {
			f.Codes = append(f.Codes, l.Zone+"="+code)
		}
		if l.Reason != "" {
			f.Reasons = append(f.Reasons, l.Zone+": "+l.Reason)
		}
	}
	// A list that could not answer is not a listing (and not a temperror
	// that would hold up the mail): the result says none.
	result, detail := "none", "not listed"
	if len(f.Listed) > 0 {
		result, detail = "listed", fmt.Sprintf("score %g: %s", f.Score, strings.Join(f.Codes, ", "))
	}
	if len(f.Errors) > 0 {
		detail += "; failed: " + strings.Join(f.Errors, ", ")
	}
	return check.Result{Result: result, Detail: detail, Facts: f}
}
