package policy

import (
	"context"
	"fmt"
	"strings"

	"mxguard/checks/dnsbl"
)

// DNSBLFacts are the DNS list check's facts (RFC 5782).
type DNSBLFacts struct {
	Score   float64  `expr:"score" json:"score" doc:"the sum of the weights of the lists that list the client (allow lists weigh negative)"`
	Listed  []string `expr:"listed" json:"listed" doc:"the zones that list the client, in config order"`
	Codes   []string `expr:"codes" json:"codes" doc:"the return codes, as zone=code"`
	Reasons []string `expr:"reasons" json:"reasons" doc:"the lists' TXT reasons, as zone: text"`
	Errors  []string `expr:"errors" json:"errors" doc:"lists that failed (a temporary failure or an error code): not listings"`
}

// registerDNSBL adds the DNS list check for zones.
func (e *Engine) registerDNSBL(zones []dnsbl.Zone) {
	c := &dnsbl.Checker{Lookup: e.resolver, Zones: zones}
	e.register(&checker{name: "dnsbl", stage: StageConnect, run: func(ctx context.Context, tx *Transaction) CheckFacts {
		res := c.Check(ctx, tx.Client.Addr.Addr())
		f := DNSBLFacts{Score: res.Score, Errors: res.Errors}
		for _, l := range res.Listed {
			f.Listed = append(f.Listed, l.Zone)
			for _, code := range l.Codes {
				f.Codes = append(f.Codes, l.Zone+"="+code)
			}
			if l.Reason != "" {
				f.Reasons = append(f.Reasons, l.Zone+": "+l.Reason)
			}
		}
		tx.screen.DNSBL = f
		// A list that could not answer is not a listing (and not a
		// temperror that would hold up the mail): the result says none.
		result, detail := "none", "not listed"
		if len(f.Listed) > 0 {
			result, detail = "listed", fmt.Sprintf("score %g: %s", f.Score, strings.Join(f.Codes, ", "))
		}
		if len(f.Errors) > 0 {
			detail += "; failed: " + strings.Join(f.Errors, ", ")
		}
		return CheckFacts{Result: result, Detail: detail}
	}})
}

// screenFacts are what the screening checks found, kept on the transaction.
type screenFacts struct {
	DNSBL DNSBLFacts
}
