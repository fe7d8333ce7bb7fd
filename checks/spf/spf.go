// Package spf evaluates the Sender Policy Framework (RFC 7208) for an
// inbound SMTP client: whether the client's IP address is authorised to use
// the MAIL FROM domain and the HELO name.
//
// A check reports evidence; it never decides. Checker.Check knows nothing of
// SMTP sessions or rules: it takes the client IP, the HELO name and the MAIL
// FROM address, and returns the RFC 7208 §8 results.
//
// The evaluation itself is blitiri.com.ar/go/spf's; this package feeds it the
// identities as RFC 7208 §2.3, §2.4 and §4.3 define them, checks every record
// it fetches against the §12 grammar, and hands it DNS errors in the shape it
// can classify (see guard).
package spf

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	libspf "blitiri.com.ar/go/spf"

	"mxguard/checks/resolver"
)

// Resolver is what SPF evaluation needs from DNS; it is
// blitiri.com.ar/go/spf's DNSResolver, and mxguard/checks/resolver's
// *Resolver satisfies it.
//
// Errors should be, or wrap, *net.DNSError: IsNotFound for NXDOMAIN and
// NODATA, IsTemporary or IsTimeout for failures worth a retry. Any other
// error counts as temporary.
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
	LookupAddr(ctx context.Context, addr string) ([]string, error)
}

// The results of check_host() (RFC 7208 §2.6, §8).
const (
	None      = "none"      // §8.1: no record, or no domain to check
	Neutral   = "neutral"   // §8.2: the domain makes no assertion
	Pass      = "pass"      // §8.3: the client is authorised
	Fail      = "fail"      // §8.4: the client is not authorised
	SoftFail  = "softfail"  // §8.5: probably not authorised
	TempError = "temperror" // §8.6: a transient (DNS) error
	PermError = "permerror" // §8.7: the published records are broken
)

// The identities a result can be about (RFC 7208 §2.3, §2.4).
const (
	IdentityMailFrom = "mailfrom"
	IdentityHELO     = "helo"
)

// Input is what an SPF check looks at.
type Input struct {
	// IP is the SMTP client's address. An IPv4-mapped IPv6 address is
	// evaluated as IPv4.
	IP netip.Addr
	// HELO is the name the client gave in HELO or EHLO.
	HELO string
	// MailFrom is the reverse-path of MAIL FROM without the angle brackets;
	// "" is the null sender. A value with no "@domain" is checked like the
	// null sender, through the HELO identity (RFC 7208 §2.4).
	MailFrom string
}

// Result is the evidence an SPF check reports.
type Result struct {
	// Result is pass, fail, softfail, neutral, none, temperror or
	// permerror (RFC 7208 §8), for the identity named by Identity.
	Result string
	// Domain is the domain whose policy gave Result: MAIL FROM's domain, or
	// the HELO name when MAIL FROM is null (RFC 7208 §2.4).
	Domain string
	// Identity is "mailfrom" or "helo".
	Identity string
	// HELOResult is the HELO identity's result, always evaluated
	// (RFC 7208 §2.3); "none" when HELO is not a domain name.
	HELOResult string
	// Detail is for people: the error, or the term that matched. It is not
	// stable and may name DNS data; do not show it to SMTP clients.
	Detail string
}

// Checker evaluates SPF. The zero value is not usable: Resolver is required.
// A Checker is safe for concurrent use if its Resolver is.
type Checker struct {
	// Resolver answers the DNS queries. mxguard/checks/resolver's Resolver
	// is the intended one; its cache is what makes repeated checks cheap.
	Resolver Resolver
}

// maxEvalTime bounds an evaluation whose context has no deadline. RFC 7208
// §4.6.4 says a limit on the elapsed time of check_host() SHOULD allow at
// least 20 seconds; past it the result is temperror.
const maxEvalTime = 20 * time.Second

// Check evaluates the MAIL FROM identity (or, for the null sender, the HELO
// identity) and the HELO identity of in. Lookups are bounded by ctx, or by
// 20 seconds (RFC 7208 §4.6.4) if ctx has no deadline; a lookup cut short
// gives temperror.
func (c *Checker) Check(ctx context.Context, in Input) Result {
	if c == nil || c.Resolver == nil {
		return Result{Result: TempError, Identity: IdentityMailFrom, HELOResult: TempError,
			Detail: "spf: checker has no resolver"}
	}
	if !in.IP.IsValid() {
		return Result{Result: PermError, Identity: IdentityMailFrom, HELOResult: PermError,
			Detail: "spf: no client IP address"}
	}
	// RFC 7208 §5.6 matches IPv4 networks against IPv4 clients; an
	// IPv4-mapped address is an IPv4 client.
	ip := net.IP(in.IP.Unmap().AsSlice())
	// Under resolver.CacheOnly no lookup waits: nothing to bound, and
	// nothing to gain from evaluating the identities side by side.
	cacheOnly := resolver.IsCacheOnly(ctx)
	if _, ok := ctx.Deadline(); !ok && !cacheOnly {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, maxEvalTime)
		defer cancel()
	}

	// RFC 7208 §2.3: the HELO identity is checked with <sender>
	// "postmaster@" + HELO.
	heloID := identity{domain: in.HELO, sender: "postmaster@" + in.HELO, helo: in.HELO}

	local, domain, ok := splitMailFrom(in.MailFrom)
	if !ok {
		// RFC 7208 §2.4: with a null reverse-path (or one without a
		// domain), the MAIL FROM check is the HELO check.
		res := c.evaluate(ctx, ip, heloID)
		res.Identity = IdentityHELO
		return res
	}
	if local == "" {
		local = "postmaster" // RFC 7208 §4.3
	}

	mailID := identity{domain: domain, sender: local + "@" + domain, helo: in.HELO}
	if cacheOnly {
		res := c.evaluate(ctx, ip, mailID)
		res.HELOResult = c.evaluate(ctx, ip, heloID).HELOResult
		res.Identity = IdentityMailFrom
		return res
	}
	// The two identities are independent; evaluating HELO alongside keeps a
	// slow DNS from costing twice. Each result has its own variable, so
	// nothing depends on which finishes first.
	var (
		helo      Result
		heloPanic any
		done      = make(chan struct{})
	)
	go func() {
		defer close(done)
		// A panic here would kill the process; carry it to the caller's
		// goroutine, where the check runner recovers panics.
		defer func() { heloPanic = recover() }()
		helo = c.evaluate(ctx, ip, heloID)
	}()
	res := c.evaluate(ctx, ip, mailID)
	<-done
	if heloPanic != nil {
		panic(heloPanic)
	}
	res.HELOResult = helo.HELOResult
	res.Identity = IdentityMailFrom
	return res
}

// identity is one check_host() call: <domain> and <sender> (RFC 7208 §4.1),
// and the HELO name for the %{h} macro.
type identity struct {
	domain, sender, helo string
}

// evaluate runs check_host() for one identity. The result is in both Result
// and HELOResult; the caller keeps the one it needs.
func (c *Checker) evaluate(ctx context.Context, ip net.IP, id identity) Result {
	res := Result{Domain: id.domain}
	if err := checkDomain(id.domain); err != nil {
		// RFC 7208 §4.3: a malformed or single-label domain, or an address
		// literal, gives "none" without any lookup.
		res.Result, res.HELOResult, res.Detail = None, None, err.Error()
		return res
	}
	g := &guard{r: c.Resolver}
	t := &tracer{}
	r, err := libspf.CheckHostWithSender(ip, id.helo, id.sender,
		libspf.WithResolver(g),
		libspf.WithContext(ctx),
		libspf.WithTraceFunc(t.trace))
	res.Result = string(r)
	if g.syntaxErr != nil {
		// RFC 7208 §4.6: a syntax error anywhere in an evaluated record.
		// The guard already made the library stop; this holds even if a
		// later library version recovers differently.
		res.Result, err = PermError, g.syntaxErr
	}
	res.HELOResult = res.Result
	res.Detail = t.detail(err)
	return res
}

// splitMailFrom splits a reverse-path into local part and domain. ok is false
// when there is no domain: the null sender, or no "@". The domain follows
// the last "@", since a quoted local part may contain one (RFC 5321 §4.1.2).
func splitMailFrom(mailFrom string) (local, domain string, ok bool) {
	i := strings.LastIndexByte(mailFrom, '@')
	if i < 0 || i == len(mailFrom)-1 {
		return "", "", false
	}
	local, domain = mailFrom[:i], mailFrom[i+1:]
	if strings.ContainsRune(local, '@') {
		// blitiri.com.ar/go/spf splits <sender> at the first "@", so it
		// cannot carry such a local part; the domain, which is what is
		// being authorised, stays right, and %{l} sees "postmaster".
		local = "postmaster"
	}
	return local, domain, true
}

// checkDomain reports why domain cannot be an SPF identity: RFC 7208 §4.3
// returns "none" for a malformed name (an empty label that is not the last, a
// label over 63 octets), a name that is not multi-label, or an address
// literal. RFC 7208 §4.3 also requires IDNs as A-labels: a non-ASCII name is
// not converted here, and counts as malformed.
func checkDomain(domain string) error {
	if domain == "" {
		return errors.New("spf: no domain")
	}
	if strings.HasPrefix(domain, "[") {
		return fmt.Errorf("spf: %q is an address literal, not a domain", domain)
	}
	if _, err := netip.ParseAddr(domain); err == nil {
		return fmt.Errorf("spf: %q is an address, not a domain", domain)
	}
	name := strings.TrimSuffix(domain, ".")
	if len(name) > 253 || !validLabels(name) {
		return fmt.Errorf("spf: %q is not a valid domain name", domain)
	}
	if !strings.Contains(name, ".") {
		return fmt.Errorf("spf: %q is not a multi-label domain name", domain)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c >= 0x7f {
			return fmt.Errorf("spf: %q is not an ASCII domain name", domain)
		}
	}
	return nil
}

// tracer collects, from blitiri.com.ar/go/spf's trace, the terms that
// decided the result, innermost first. The trace messages are not a stable
// API; if they change, Detail loses the terms and nothing else.
type tracer struct {
	terms []string
}

func (t *tracer) trace(format string, args ...any) {
	const maxTerms = 12 // the lookup limit bounds nesting well below this
	switch format {
	case "%q %v, %v", "%q: %v, %v": // a term and the result it decided
		if s, ok := args[0].(string); ok && len(args) == 3 && len(t.terms) < maxTerms {
			t.terms = append(t.terms, s)
		}
	case "all: %v":
		if len(t.terms) < maxTerms {
			t.terms = append(t.terms, "all")
		}
	}
}

// detail describes the outcome for people: the library's error or match
// description, and the terms that decided it.
func (t *tracer) detail(err error) string {
	var b strings.Builder
	if err != nil {
		b.WriteString(err.Error())
	} else {
		b.WriteString("no term matched")
	}
	if len(t.terms) > 0 {
		b.WriteString(" (")
		for i, term := range t.terms {
			if i > 0 {
				b.WriteString(" via ")
			}
			b.WriteString(term)
		}
		b.WriteString(")")
	}
	return b.String()
}
