package policy

import (
	"context"
	"io"
	"net"
	"strings"

	"mxguard/checks/dkim"
	"mxguard/checks/dmarc"
	"mxguard/checks/resolver"
	"mxguard/checks/spf"
)

// SPFFacts are the SPF check's facts (RFC 7208).
type SPFFacts struct {
	Result     string `expr:"result" json:"result" doc:"the result for MAIL FROM, or for HELO with the null sender (\"\" when SPF did not run)" values:"pass,fail,softfail,neutral,none,temperror,permerror,\"\""`
	Domain     string `expr:"domain" json:"domain" doc:"the domain whose policy gave the result: MAIL FROM's, or HELO's for the null sender"`
	Identity   string `expr:"identity" json:"identity" doc:"which identity result is about (\"\" when SPF did not run)" values:"mailfrom,helo,\"\""`
	HELOResult string `expr:"helo_result" json:"helo_result" doc:"the result for the HELO identity, always evaluated (RFC 7208 §2.3; \"\" when SPF did not run)" values:"pass,fail,softfail,neutral,none,temperror,permerror,\"\""`
}

// DKIMFacts are the DKIM check's facts (RFC 6376).
type DKIMFacts struct {
	Result     string         `expr:"result" json:"result" doc:"pass if any signature passes, else temperror, fail, policy, permerror or neutral; none when unsigned (\"\" when DKIM did not run)" values:"pass,fail,policy,neutral,temperror,permerror,none,\"\""`
	Domains    []string       `expr:"domains" json:"domains" doc:"the d= domains of the signatures that pass"`
	Signatures []DKIMSigFacts `expr:"signatures" json:"signatures" doc:"every signature, in header order (at most 8 are verified)"`
}

// DKIMSigFacts describe one DKIM signature.
type DKIMSigFacts struct {
	Domain     string `expr:"domain" json:"domain"`
	Selector   string `expr:"selector" json:"selector"`
	Algorithm  string `expr:"algorithm" json:"algorithm"`
	Result     string `expr:"result" json:"result" doc:"this signature's result (RFC 8601 §2.7.1): policy when it verified but the body goes on past l=, unsigned; DMARC counts only pass" values:"pass,fail,policy,temperror,permerror"`
	KeyBits    int    `expr:"key_bits" json:"key_bits" doc:"the key's size: the RSA modulus in bits, 256 for Ed25519 (0 when no key was fetched)"`
	BodyLength bool   `expr:"body_length" json:"body_length" doc:"the signature has l=: it signs only the first l octets of the body (RFC 6376 §3.4.5)"`
	FromSigned bool   `expr:"from_signed" json:"from_signed" doc:"From is among the signed fields (h=)"`
}

// DMARCFacts are the DMARC check's facts (RFC 7489).
type DMARCFacts struct {
	Result  string `expr:"result" json:"result" doc:"the DMARC result (permerror: the From header does not hold exactly one address; \"\" when DMARC did not run)" values:"pass,fail,none,temperror,permerror,\"\""`
	Policy  string `expr:"policy" json:"policy" doc:"the policy the record asks for the From domain (p, sp, or np for a non-existent subdomain), before pct sampling (\"\" without a record)" values:"none,quarantine,reject,\"\""`
	Percent int    `expr:"percent" json:"percent" doc:"the record's pct (0 without a record)"`
	// AppliedPolicy and Sampled are pct sampling's outcome (RFC 7489
	// §6.6.4), drawn from the From domain and the Message-ID (see
	// dmarc.Sample), which the log records too: a replay of a line
	// without them draws them again.
	AppliedPolicy string `expr:"applied_policy" json:"applied_policy" doc:"the policy after pct sampling (RFC 7489 §6.6.4): policy when the message is in the sample, else the next weaker one (reject becomes quarantine, quarantine becomes none); \"\" without a record" values:"none,quarantine,reject,\"\""`
	Sampled       bool   `expr:"sampled" json:"sampled" doc:"the message is in the pct sample, drawn from a hash of the From domain and the Message-ID (always with pct=100, never with pct=0)"`
	SPFAligned    bool   `expr:"spf_aligned" json:"spf_aligned" doc:"SPF passed for a domain aligned with From"`
	DKIMAligned   bool   `expr:"dkim_aligned" json:"dkim_aligned" doc:"a DKIM signature aligned with From passed"`
	Detail        string `expr:"detail" json:"detail" doc:"what DMARC found, for people"`
}

// FromFacts describe the RFC5322.From header.
type FromFacts struct {
	Domain string `expr:"domain" json:"domain" doc:"the domain of the one From address (\"\" when there is not exactly one)"`
	Local  bool   `expr:"local" json:"local" doc:"the From domain is one of ours (config domains): mail claiming to be from us"`
}

// registerAuth adds the SPF, DKIM and DMARC checks on r.
func (e *Engine) registerAuth(r *resolver.Resolver) {
	sp := &spf.Checker{Resolver: r}
	e.register(&checker{name: "spf", stage: StageMail, run: func(ctx context.Context, tx *Transaction) outcome {
		res := sp.Check(ctx, spf.Input{IP: tx.Client.Addr.Addr().Unmap(), HELO: tx.Client.HELO, MailFrom: tx.MailFrom})
		f := SPFFacts{Result: res.Result, Domain: res.Domain, Identity: res.Identity, HELOResult: res.HELOResult}
		return outcome{CheckFacts: CheckFacts{Result: res.Result, Detail: res.Detail}, apply: func(tx *Transaction) { tx.auth.SPF = f }}
	}})
	dopts := dkim.Options{Lookup: r.LookupTXT}
	e.register(&checker{name: "dkim", stage: StageData,
		run: func(ctx context.Context, tx *Transaction) outcome {
			rd, err := contentReader(tx)
			if err != nil {
				return only(CheckFacts{Result: ResultTemperror, Detail: err.Error()})
			}
			return dkimFacts(dkim.Verify(ctx, rd, dopts))
		},
		// The prefetcher saw the whole header section, and no signature.
		quick: func(tx *Transaction) (outcome, bool) {
			if p := tx.dkimPrefetch; p != nil && p.Unsigned() {
				return dkimFacts(dkim.Result{Result: dkim.None}), true
			}
			return outcome{}, false
		},
	})
	dm := &dmarc.Checker{Lookup: r.LookupTXT, Exists: func(ctx context.Context, domain string) (bool, error) {
		_, err := r.LookupIPAddr(ctx, domain)
		if err == nil {
			return true, nil
		}
		if de, ok := err.(*net.DNSError); ok && de.IsNotFound {
			if _, err := r.LookupMX(ctx, domain); err == nil {
				return true, nil
			} else if de, ok := err.(*net.DNSError); ok && de.IsNotFound {
				return false, nil
			}
		}
		return false, err
	}}
	e.register(&checker{name: "dmarc", stage: StageData, deps: []string{"spf", "dkim"}, run: func(ctx context.Context, tx *Transaction) outcome {
		in := dmarc.Input{Header: tx.Header(), SPFResult: tx.auth.SPF.Result, SPFDomain: tx.auth.SPF.Domain, From: tx.from,
			MessageID: tx.MessageID}
		for _, s := range tx.auth.DKIM.Signatures {
			in.DKIM = append(in.DKIM, dmarc.DKIMSig{Domain: s.Domain, Result: s.Result})
		}
		res := dm.Check(ctx, in)
		f := DMARCFacts{Result: res.Result, Policy: res.Policy, Percent: res.Percent,
			AppliedPolicy: res.AppliedPolicy, Sampled: res.Sampled,
			SPFAligned: res.SPFAligned, DKIMAligned: res.DKIMAligned, Detail: res.Detail}
		return outcome{CheckFacts: CheckFacts{Result: res.Result, Detail: res.Detail}, apply: func(tx *Transaction) { tx.auth.DMARC = f }}
	}})
}

// dkimFacts is the outcome of a DKIM verification.
func dkimFacts(res dkim.Result) outcome {
	f := DKIMFacts{Result: res.Result}
	var details []string
	for _, s := range res.Signatures {
		f.Signatures = append(f.Signatures, DKIMSigFacts{Domain: s.Domain, Selector: s.Selector, Algorithm: s.Algorithm,
			Result: s.Result, KeyBits: s.KeyBits, BodyLength: s.BodyLength, FromSigned: s.FromSigned})
		if s.Result == dkim.Pass {
			f.Domains = append(f.Domains, strings.ToLower(s.Domain))
		}
		details = append(details, s.Domain+"/"+s.Selector+": "+s.Result+" "+s.Detail)
	}
	return outcome{CheckFacts: CheckFacts{Result: res.Result, Detail: strings.Join(details, "; ")},
		apply: func(tx *Transaction) { tx.auth.DKIM, tx.auth.dkimSigs = f, res.Signatures }}
}

// authFacts are what the authentication checks found, kept on the
// transaction; Facts copies them.
type authFacts struct {
	SPF      SPFFacts
	DKIM     DKIMFacts
	DMARC    DMARCFacts
	From     FromFacts
	dkimSigs []dkim.Signature
}

// fromFacts fills in the From facts from the header, for the data stage.
func (s *Session) fromFacts(tx *Transaction) {
	if tx.fromDone {
		return
	}
	tx.fromDone = true
	// Parsed once here, before the data-stage checks start, for the
	// header checks and DMARC too.
	tx.from = dmarc.ParseFrom(tx.Header())
	if tx.from.Err != nil {
		return
	}
	d := tx.from.Domain
	tx.auth.From = FromFacts{Domain: d, Local: s.LocalDomain(d)}
}

// DataTap returns a writer to copy the message to while it arrives, so
// that the DKIM keys are looked up while the transfer goes on (the message
// is verified from the spool afterwards, and an unsigned one not read at
// all); nil when no data-stage consumer needs DKIM. Finish releases it.
func (s *Session) DataTap(ctx context.Context, tx *Transaction) io.Writer {
	if s.e.checks["dkim"] == nil || !s.needsAtData("dkim") {
		return nil
	}
	tx.dkimPrefetch = dkim.NewPrefetcher(ctx, dkim.Options{Lookup: s.e.resolver.LookupTXT, Memory: s.e.memory})
	return tx.dkimPrefetch
}

// needsAtData reports whether the data stage will run check name.
func (s *Session) needsAtData(name string) bool {
	for _, c := range s.st.plan[StageData] {
		if c.name == name {
			return true
		}
	}
	return false
}
