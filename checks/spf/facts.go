package spf

import (
	"context"

	"mxguard/checks/check"
)

// Facts are the SPF check's facts (RFC 7208), as rules read them.
type Facts struct {
	Result     string `expr:"result" json:"result" doc:"the result for MAIL FROM, or for HELO with the null sender (\"\" when SPF did not run)" values:"pass,fail,softfail,neutral,none,temperror,permerror,\"\""`
	Domain     string `expr:"domain" json:"domain" doc:"the domain whose policy gave the result: MAIL FROM's, or HELO's for the null sender"`
	Identity   string `expr:"identity" json:"identity" doc:"which identity result is about (\"\" when SPF did not run)" values:"mailfrom,helo,\"\""`
	HELOResult string `expr:"helo_result" json:"helo_result" doc:"the result for the HELO identity, always evaluated (RFC 7208 §2.3; \"\" when SPF did not run)" values:"pass,fail,softfail,neutral,none,temperror,permerror,\"\""`
}

// Define builds the SPF check: at MAIL, for the client's address, HELO
// name and reverse path. It needs DNS.
func (Facts) Define(env check.Env) check.Def {
	d := check.Def{Stage: check.Mail}
	if env.Resolver == nil {
		return d
	}
	c := &Checker{Resolver: env.Resolver}
	d.Run = func(ctx context.Context, v check.View) check.Result {
		res := c.Check(ctx, Input{IP: v.Client(), HELO: v.HELO(), MailFrom: v.MailFrom()})
		return check.Result{Result: res.Result, Detail: res.Detail,
			Facts: Facts{Result: res.Result, Domain: res.Domain, Identity: res.Identity, HELOResult: res.HELOResult}}
	}
	d.Quick = check.CacheFirst(d.Run)
	return d
}
