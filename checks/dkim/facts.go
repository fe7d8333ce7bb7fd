package dkim

import (
	"context"
	"strings"

	"mxguard/checks/check"
)

// Facts are the DKIM check's facts (RFC 6376), as rules read them.
type Facts struct {
	Result     string     `expr:"result" json:"result" doc:"pass if any signature passes, else temperror, fail, policy, permerror or neutral; none when unsigned (\"\" when DKIM did not run)" values:"pass,fail,policy,neutral,temperror,permerror,none,\"\""`
	Domains    []string   `expr:"domains" json:"domains" doc:"the d= domains of the signatures that pass"`
	Signatures []SigFacts `expr:"signatures" json:"signatures" doc:"every signature, in header order (at most 8 are verified)"`
}

// SigFacts describe one DKIM signature.
type SigFacts struct {
	Domain     string `expr:"domain" json:"domain"`
	Selector   string `expr:"selector" json:"selector"`
	Algorithm  string `expr:"algorithm" json:"algorithm"`
	Result     string `expr:"result" json:"result" doc:"this signature's result (RFC 8601 §2.7.1): policy when it verified but the body goes on past l=, unsigned; DMARC counts only pass" values:"pass,fail,policy,temperror,permerror"`
	KeyBits    int    `expr:"key_bits" json:"key_bits" doc:"the key's size: the RSA modulus in bits, 256 for Ed25519 (0 when no key was fetched)"`
	BodyLength bool   `expr:"body_length" json:"body_length" doc:"the signature has l=: it signs only the first l octets of the body (RFC 6376 §3.4.5)"`
	FromSigned bool   `expr:"from_signed" json:"from_signed" doc:"From is among the signed fields (h=)"`
	Identifier string `expr:"identifier" json:"identifier,omitempty" doc:"the signature's i=, or @ and its d= when it has none (RFC 6376 §3.5)"`
}

// Define builds the DKIM check: at data, on the message as the backend
// receives it. Its tap looks the keys up while the message arrives, so
// that verifying from the spool afterwards finds them in the resolver's
// cache, and an unsigned message is known as such without reading it
// again. It needs DNS.
func (Facts) Define(env check.Env) check.Def {
	d := check.Def{Stage: check.Data}
	if env.Resolver == nil {
		return d
	}
	opts := Options{Lookup: env.Resolver.LookupTXT}
	d.Run = func(ctx context.Context, v check.View) check.Result {
		rd, err := v.Content()
		if err != nil {
			return check.Result{Result: check.Temperror, Detail: err.Error()}
		}
		return Verify(ctx, rd, opts).result()
	}
	cached := check.CacheFirst(d.Run)
	d.Quick = func(v check.View) (check.Result, bool) {
		// The prefetcher saw the whole header section, and no signature.
		if p, ok := v.Tap().(*Prefetcher); ok && p.Unsigned() {
			return Result{Result: None}.result(), true
		}
		// A signed message whose keys the prefetcher put in the cache.
		if v.Size() <= check.QuickMaxBytes {
			return cached(v)
		}
		return check.Result{}, false
	}
	d.Tap = func(ctx context.Context) check.Tap {
		return NewPrefetcher(ctx, Options{Lookup: env.Resolver.LookupTXT, Memory: env.Memory})
	}
	return d
}

// result is the check's result and facts for res.
func (res Result) result() check.Result {
	f := Facts{Result: res.Result}
	var details []string
	for _, s := range res.Signatures {
		f.Signatures = append(f.Signatures, SigFacts{Domain: s.Domain, Selector: s.Selector, Algorithm: s.Algorithm,
			Result: s.Result, KeyBits: s.KeyBits, BodyLength: s.BodyLength, FromSigned: s.FromSigned, Identifier: s.Identifier})
		if s.Result == Pass {
			f.Domains = append(f.Domains, strings.ToLower(s.Domain))
		}
		details = append(details, s.Domain+"/"+s.Selector+": "+s.Result+" "+s.Detail)
	}
	return check.Result{Result: res.Result, Detail: strings.Join(details, "; "), Facts: f}
}
