// Package dmarc is mxguard's DMARC check (RFC 7489): it finds the
// RFC5322.From domain, discovers the DMARC policy that covers it, and
// reports whether an SPF or DKIM result the other checks produced is
// aligned with it. It samples the record's pct (RFC 7489 §6.6.4) from the
// message's identity, so the answer is the same wherever it is computed.
//
// The check reports evidence; it never decides. Result.Policy is what the
// domain owner asks for, and rules decide what mxguard does with it. The
// check knows nothing of SMTP sessions: SPF and DKIM results arrive as plain
// values in Input, so the dependency is visible in the types.
//
// Policy discovery follows RFC 7489 §6.6.3 with the Public Suffix List
// (§3.2), not DMARCbis's DNS tree walk; the DMARCbis / RFC 9091 np= tag is
// honoured when the caller supplies Checker.Exists.
package dmarc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	msgdmarc "github.com/emersion/go-msgauth/dmarc"
)

// Results (RFC 7489 §11.2 and RFC 8601 §2.7.1's dmarc method values).
const (
	Pass      = "pass"
	Fail      = "fail"
	None      = "none"
	TempError = "temperror"
	PermError = "permerror"
)

// Policies a domain owner can request (RFC 7489 §6.3 p= and sp=).
const (
	PolicyNone       = "none"
	PolicyQuarantine = "quarantine"
	PolicyReject     = "reject"
)

// Input is what the DMARC check reads: the message's header section and
// the results of the SPF and DKIM checks.
type Input struct {
	// Header is the message's header section, up to the blank line.
	Header []byte
	// SPFResult is the SPF result (RFC 7208 §2.6: pass, fail, softfail,
	// neutral, none, temperror, permerror) of the MAIL FROM identity, or of
	// the HELO identity when MAIL FROM was null (RFC 7489 §3.1.2).
	SPFResult string
	// SPFDomain is the domain SPF evaluated.
	SPFDomain string
	// DKIM holds the result of every DKIM signature on the message.
	DKIM []DKIMSig
	// MessageID is the message's Message-ID without angle brackets, as
	// the verdict log records it; with the From domain it is the identity
	// that pct sampling draws from (see Sample). "" when there is none.
	MessageID string
	// From, when not nil, is FromDomain's answer for Header, from a
	// caller that has parsed it already; Header is then not parsed again.
	From *ParsedFrom
}

// ParsedFrom is what FromDomain returned for a header section.
type ParsedFrom struct {
	Domain string
	Err    error
}

// ParseFrom returns FromDomain's answer for header as a ParsedFrom.
func ParseFrom(header []byte) *ParsedFrom {
	d, err := FromDomain(header)
	return &ParsedFrom{Domain: d, Err: err}
}

// DKIMSig is the outcome of verifying one DKIM signature.
type DKIMSig struct {
	Domain string // the signature's d= (RFC 6376 §3.5)
	Result string // pass, fail, neutral, temperror, permerror, ...
}

// Result is the DMARC evidence for one message.
type Result struct {
	// Result is pass, fail, none, temperror or permerror.
	Result string
	// From is the RFC5322.From domain, "" if it could not be determined.
	From string
	// Policy is the policy that applies to From: p=, or sp= for a
	// subdomain covered by its Organizational Domain's record, or np= for a
	// non-existent subdomain when the record publishes it and
	// Checker.Exists is set. "" when no record applies.
	Policy string
	// Percent is the record's pct= (100 when absent); 0 when no record
	// applies.
	Percent int
	// AppliedPolicy is Policy after pct sampling (RFC 7489 §6.6.4):
	// Policy when the message is sampled, else the next weaker policy
	// (reject becomes quarantine, quarantine becomes none). It is set
	// whatever Result is, and matters when Result is fail. "" when no
	// record applies.
	AppliedPolicy string
	// Sampled is true when the message falls within the record's pct
	// (see Sample); false when no record applies.
	Sampled bool
	// SPFAligned is true when SPF passed for a domain aligned with From.
	SPFAligned bool
	// DKIMAligned is true when a DKIM signature passed for a domain
	// aligned with From.
	DKIMAligned bool
	// Record is the domain whose _dmarc record applies: the From domain
	// or its Organizational Domain; "" when none applies.
	Record string
	// Detail explains the result for the operator's log.
	Detail string
}

// TXTLookup returns the TXT records at name, each one's strings joined.
// Errors must be classifiable with errors.As into *net.DNSError: IsNotFound
// for NXDOMAIN and NODATA, IsTemporary or IsTimeout for failures. Any other
// error is taken as a temporary failure.
type TXTLookup func(ctx context.Context, name string) ([]string, error)

// Checker evaluates DMARC. Its zero value has no lookup and reports
// temperror; it is safe for concurrent use when its functions are.
type Checker struct {
	// Lookup fetches TXT records; mxguard passes its resolver's LookupTXT.
	Lookup TXTLookup
	// Exists, if set, reports whether a domain exists (has A, AAAA or MX
	// records, RFC 9091 §2) and enables the np= policy for non-existent
	// subdomains. nil means np= is not applied.
	Exists func(ctx context.Context, domain string) (bool, error)
}

// Check evaluates DMARC for a message. It never returns pass or fail on the
// strength of a temporary failure: a DNS failure during policy discovery is
// temperror, and so is a fail that an aligned SPF or DKIM temperror might
// have turned into a pass.
func (c *Checker) Check(ctx context.Context, in Input) Result {
	pf := in.From
	if pf == nil {
		pf = ParseFrom(in.Header)
	}
	from, err := pf.Domain, pf.Err
	if err != nil {
		// RFC 7489 §6.6.1: without exactly one From domain there is
		// nothing to evaluate.
		return Result{Result: PermError, Detail: err.Error()}
	}
	res := Result{From: from}
	org := OrgDomain(from)

	d := c.discover(ctx, from, org)
	if d.temp {
		res.Result, res.Detail = TempError, d.detail
		return res
	}

	strictSPF, strictDKIM := false, false // §6.3: adkim and aspf default to r
	if d.found {
		strictSPF = d.rec.rec.SPFAlignment == msgdmarc.AlignmentStrict
		strictDKIM = d.rec.rec.DKIMAlignment == msgdmarc.AlignmentStrict
	}

	// §4.2: a message passes when an underlying mechanism passes for an
	// aligned identifier. §3.1.2: SPF counts only as pass.
	var tempErrs []string
	spfResult := strings.ToLower(strings.TrimSpace(in.SPFResult))
	if aligned(from, in.SPFDomain, strictSPF) {
		switch spfResult {
		case "pass":
			res.SPFAligned = true
		case "temperror":
			tempErrs = append(tempErrs, "SPF temperror for "+in.SPFDomain)
		}
	}
	var dkimPass string
	for _, sig := range in.DKIM {
		if !aligned(from, sig.Domain, strictDKIM) {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(sig.Result)) {
		case "pass":
			if !res.DKIMAligned {
				res.DKIMAligned, dkimPass = true, sig.Domain
			}
		case "temperror":
			tempErrs = append(tempErrs, "DKIM temperror for d="+sig.Domain)
		}
	}
	// Only a temporary failure of an aligned identifier can hide a pass.
	// An unaligned one could not, and counting it would let a sender turn
	// every fail into temperror by breaking its own DNS.

	if !d.found {
		// Alignment is still reported (with relaxed defaults) as
		// evidence, but without a record DMARC does not apply.
		res.Result, res.Detail = None, d.detail
		return res
	}

	res.Record = d.at
	res.Percent = 100
	if d.rec.rec.Percent != nil {
		res.Percent = *d.rec.rec.Percent
	}
	var notes []string
	if d.detail != "" {
		notes = append(notes, d.detail)
	}
	if len(d.rec.dropped) > 0 {
		notes = append(notes, "ignored invalid "+strings.Join(d.rec.dropped, ", "))
	}

	// Which policy applies (§6.3 p and sp; RFC 9091 §4.1 np).
	res.Policy = string(d.rec.rec.Policy)
	var npErr error
	if d.at != from {
		if sp := string(d.rec.rec.SubdomainPolicy); sp != "" {
			res.Policy = sp
		}
		if d.rec.np != "" && c.Exists != nil {
			exists, err := c.Exists(ctx, from)
			switch {
			case err != nil:
				npErr = err
				notes = append(notes, fmt.Sprintf("cannot tell whether %s exists for np=: %v", from, err))
			case !exists:
				res.Policy = d.rec.np
				notes = append(notes, from+" does not exist; np= applies")
			}
		}
	}

	// §6.6.4: the policy applies to at most pct% of the messages.
	res.AppliedPolicy, res.Sampled = Applied(res.Policy, res.Percent, from, in.MessageID)
	if !res.Sampled && res.AppliedPolicy != res.Policy {
		notes = append(notes, fmt.Sprintf("not in the pct=%d sample: %s applies instead of %s", res.Percent, res.AppliedPolicy, res.Policy))
	}

	switch {
	case res.SPFAligned:
		res.Result = Pass
		notes = append([]string{"SPF passed for aligned " + in.SPFDomain}, notes...)
	case res.DKIMAligned:
		res.Result = Pass
		notes = append([]string{"DKIM passed for aligned d=" + dkimPass}, notes...)
	case len(tempErrs) > 0:
		res.Result = TempError
		notes = append(tempErrs, notes...)
	case npErr != nil:
		// The policy of a fail is unknown until we know whether the
		// domain exists.
		res.Result = TempError
	default:
		res.Result = Fail
		notes = append([]string{"no aligned SPF or DKIM pass"}, notes...)
	}
	res.Detail = strings.Join(notes, "; ")
	return res
}

// discovery is the outcome of policy discovery.
type discovery struct {
	found  bool
	temp   bool         // a temporary DNS failure: temperror
	rec    policyRecord // when found
	at     string       // the domain whose record applies, when found
	detail string
}

// discover finds the DMARC record for from (RFC 7489 §6.6.3): the From
// domain first, then, only if it has no DMARC record at all, the
// Organizational Domain.
func (c *Checker) discover(ctx context.Context, from, org string) discovery {
	if c.Lookup == nil {
		return discovery{temp: true, detail: "dmarc: no TXT lookup configured"}
	}
	d, empty := c.discoverAt(ctx, from)
	if !empty || org == from {
		return d
	}
	// §6.6.3 step 3: the set is empty; ask the Organizational Domain.
	d, empty = c.discoverAt(ctx, org)
	if empty {
		d.detail = fmt.Sprintf("no DMARC record at _dmarc.%s or _dmarc.%s", from, org)
	}
	return d
}

// discoverAt looks for the DMARC record of one domain. empty reports that
// the name holds no DMARC record, so that discovery goes on (§6.6.3 step 3).
func (c *Checker) discoverAt(ctx context.Context, domain string) (d discovery, empty bool) {
	name := "_dmarc." + domain
	txts, err := c.Lookup(ctx, name)
	if err != nil {
		var de *net.DNSError
		if errors.As(err, &de) && de.IsNotFound && !de.IsTemporary && !de.IsTimeout {
			return discovery{detail: "no DMARC record at " + name}, true
		}
		// A failure we cannot classify is treated as temporary: a
		// temporary failure must never become a verdict.
		return discovery{temp: true, detail: fmt.Sprintf("dmarc: lookup %s: %v", name, err)}, false
	}
	var recs []string
	for _, txt := range txts {
		// §6.6.3 steps 2 and 4: discard what is not a DMARC record.
		if isDMARCRecord(txt) {
			recs = append(recs, txt)
		}
	}
	switch len(recs) {
	case 0:
		return discovery{detail: "no DMARC record at " + name}, true
	case 1:
	default:
		// §6.6.3 step 5: more than one record means no DMARC processing,
		// and discovery stops here: the set was not empty.
		return discovery{detail: fmt.Sprintf("%d DMARC records at %s; DMARC does not apply (RFC 7489 §6.6.3)", len(recs), name)}, false
	}
	rec, ok, detail := parseRecordCached(recs[0])
	if !ok {
		return discovery{detail: name + ": " + detail}, false
	}
	if detail != "" {
		detail = name + ": " + detail
	}
	return discovery{found: true, rec: rec, at: domain, detail: detail}, false
}
