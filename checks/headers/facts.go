package headers

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"mxguard/checks/check"
	"mxguard/checks/dmarc"
)

// Facts are the header checks' facts (RFC 5322 §3.6), as rules read them.
type Facts struct {
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

// Define builds the header checks: at data, on the header section, with
// the limits and protected domains of its config section (Config; the
// domains, SMTPUTF8 and From come from the transaction). No I/O, and the
// header size limit bounds the work: always quick.
func (Facts) Define(env check.Env) check.Def {
	c, ok := env.Section.(Config)
	if !ok {
		c = DefaultConfig()
	}
	o := c.Options()
	quick := func(v check.View) (check.Result, bool) {
		opts := o
		opts.SMTPUTF8 = v.SMTPUTF8()
		opts.Domains = v.LocalDomains()
		d, err := v.From()
		opts.From = &dmarc.ParsedFrom{Domain: d, Err: err}
		r := Check(v.Header(), opts)
		if split, err := v.HeaderSplit(); err == nil && split.Malformed {
			// The line that ended the section is not in Header: the body
			// starts with it (see mailhdr).
			r.Malformed = append(r.Malformed, fmt.Sprintf("line %d: not a header field, and no empty line before it: the header section ends there",
				bytes.Count(v.Header(), []byte("\n"))+1))
		}
		return r.result(), true
	}
	return check.Def{Stage: check.Data, Quick: quick,
		Run: func(_ context.Context, v check.View) check.Result { r, _ := quick(v); return r }}
}

// result is the check's result and facts for r.
func (r Result) result() check.Result {
	f := Facts{FromCount: r.FromCount, FromAddresses: r.FromAddresses, DateCount: r.DateCount,
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
	if len(problems) == 0 {
		return check.Result{Result: "pass", Detail: fmt.Sprintf("%d fields", r.Fields), Facts: f}
	}
	return check.Result{Result: "fail", Detail: strings.Join(problems, "; "), Facts: f}
}
