package policy

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"mxguard/checks/dnsbl"
	"mxguard/checks/headers"
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
	e.register(&checker{name: "dnsbl", stage: StageConnect, run: func(ctx context.Context, tx *Transaction) outcome {
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
		// A list that could not answer is not a listing (and not a
		// temperror that would hold up the mail): the result says none.
		result, detail := "none", "not listed"
		if len(f.Listed) > 0 {
			result, detail = "listed", fmt.Sprintf("score %g: %s", f.Score, strings.Join(f.Codes, ", "))
		}
		if len(f.Errors) > 0 {
			detail += "; failed: " + strings.Join(f.Errors, ", ")
		}
		return outcome{CheckFacts: CheckFacts{Result: result, Detail: detail}, apply: func(tx *Transaction) { tx.screen.DNSBL = f }}
	}})
}

// screenFacts are what the screening checks found, kept on the transaction.
type screenFacts struct {
	DNSBL   DNSBLFacts
	Headers HeadersFacts
}

// HeadersFacts are the header checks' facts (RFC 5322 §3.6).
type HeadersFacts struct {
	FromCount        int      `expr:"from_count" json:"from_count" doc:"From header fields"`
	FromAddresses    int      `expr:"from_addresses" json:"from_addresses" doc:"addresses in the From field(s)"`
	DateCount        int      `expr:"date_count" json:"date_count" doc:"Date header fields"`
	DateValid        bool     `expr:"date_valid" json:"date_valid" doc:"there is exactly one Date and it parses"`
	MessageIDCount   int      `expr:"message_id_count" json:"message_id_count" doc:"Message-ID header fields"`
	Duplicates       []string `expr:"duplicates" json:"duplicates" doc:"fields that may appear once but appear more often (spelt as listed), sorted" values:"Bcc,Cc,Date,From,In-Reply-To,Message-ID,References,Reply-To,Sender,Subject,To"`
	Fields           int      `expr:"fields" json:"fields" doc:"header fields in all"`
	Bytes            int      `expr:"bytes" json:"bytes" doc:"size of the header section"`
	TooBig           bool     `expr:"too_big" json:"too_big" doc:"the header section is over headers.max_bytes or headers.max_fields"`
	EightBit         bool     `expr:"eight_bit" json:"eight_bit" doc:"8-bit bytes in the header without SMTPUTF8"`
	Malformed        int      `expr:"malformed" json:"malformed" doc:"malformed lines in the header section, and the line that ended it without an empty line (a line that is not a field: the backend gets an empty line before it)"`
	DisplayNameSpoof bool     `expr:"display_name_spoof" json:"display_name_spoof" doc:"the From display name holds another address, or names one of our (or protected) domains, while the address is elsewhere"`
	SpoofDetail      string   `expr:"spoof_detail" json:"spoof_detail" doc:"why display_name_spoof is set"`
	FromDisplay      string   `expr:"from_display" json:"from_display" doc:"the From display name, RFC 2047 decoded"`
	Subject          string   `expr:"subject" json:"subject" doc:"the Subject, RFC 2047 decoded"`
}

// registerHeaders adds the header checks.
func (e *Engine) registerHeaders(o headers.Options) {
	run := func(_ context.Context, tx *Transaction) outcome {
		opts := o
		opts.SMTPUTF8 = tx.SMTPUTF8
		opts.Domains = tx.localDomains
		opts.From = tx.from
		r := headers.Check(tx.Header(), opts)
		if split, err := tx.HeaderSplit(); err == nil && split.Malformed {
			// The line that ended the section is not in Header: the body
			// starts with it (see mailhdr).
			r.Malformed = append(r.Malformed, fmt.Sprintf("line %d: not a header field, and no empty line before it: the header section ends there",
				bytes.Count(tx.Header(), []byte("\n"))+1))
		}
		f := HeadersFacts{FromCount: r.FromCount, FromAddresses: r.FromAddresses, DateCount: r.DateCount,
			DateValid: r.DateValid, MessageIDCount: r.MessageIDCount, Duplicates: r.Duplicates, Fields: r.Fields,
			Bytes: r.Bytes, TooBig: r.TooBig, EightBit: r.EightBit, Malformed: len(r.Malformed),
			DisplayNameSpoof: r.DisplayNameSpoof, SpoofDetail: r.SpoofDetail, FromDisplay: r.FromDisplay, Subject: r.Subject}
		var problems []string
		if len(r.Duplicates) > 0 {
			problems = append(problems, "duplicated "+strings.Join(r.Duplicates, ", "))
		}
		if r.DateCount == 0 {
			problems = append(problems, "no Date")
		}
		if r.MessageIDCount == 0 {
			problems = append(problems, "no Message-ID")
		}
		if r.TooBig {
			problems = append(problems, "header section too big")
		}
		if len(r.Malformed) > 0 {
			problems = append(problems, "malformed: "+strings.Join(r.Malformed, ", "))
		}
		if r.DisplayNameSpoof {
			problems = append(problems, "display name: "+r.SpoofDetail)
		}
		apply := func(tx *Transaction) { tx.screen.Headers = f }
		if len(problems) == 0 {
			return outcome{CheckFacts: CheckFacts{Result: "pass", Detail: fmt.Sprintf("%d fields", r.Fields)}, apply: apply}
		}
		return outcome{CheckFacts: CheckFacts{Result: "fail", Detail: strings.Join(problems, "; ")}, apply: apply}
	}
	// No I/O, and the header size limit bounds the work: always quick.
	e.register(&checker{name: "headers", stage: StageData, run: run,
		quick: func(tx *Transaction) (outcome, bool) { return run(context.Background(), tx), true }})
}
