package resolver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// maxCNAMEHops bounds how far lookup follows a CNAME chain inside one
// answer, so a looping chain cannot spin.
const maxCNAMEHops = 16

// key identifies a question: a lower-case FQDN and a type (class is always IN).
type key struct {
	name  string
	qtype uint16
}

// answer is the outcome of resolving a key. Data, NXDOMAIN and NODATA are
// answers that may be cached; a non-nil fail is a temporary failure, which
// never is. An answer is shared between coalesced callers and the cache, so
// it and its records are never modified after resolve returns.
type answer struct {
	rrs      []dns.RR  // records of the asked type at the end of any CNAME chain
	txt      []string  // for TXT, each record's strings joined once here, not per hit
	negative bool      // NXDOMAIN or NODATA
	expires  time.Time // cache expiry
	server   string    // who answered, for DNSError.Server
	fail     *failure
}

// failure describes a temporary failure.
type failure struct {
	msg     string
	timeout bool
}

// lookup answers (name, qtype) from the cache or the network, coalescing
// identical concurrent misses into one network resolution. The returned
// answer is shared and must not be modified.
func (r *Resolver) lookup(ctx context.Context, name string, qtype uint16) (*answer, error) {
	qname, ok := canonical(name)
	if !ok {
		// A name that cannot be encoded cannot exist; package net reports
		// such names as not found too.
		return nil, notFound(name, "")
	}
	// A caller that has given up gets no answer, even a cached one, so a
	// cancelled context fails the same way whatever the cache holds.
	if err := ctx.Err(); err != nil {
		r.errs.Add(1)
		return nil, ctxError(name, err)
	}
	k := key{name: qname, qtype: qtype}
	if a, ok := r.cached(k); ok {
		r.hits.Add(1)
		return a.result(name)
	}
	if err := notCached(ctx, name); err != nil {
		return nil, err
	}
	r.misses.Add(1)

	// The resolution runs detached from this caller's cancellation: other
	// callers may join it, and one leaving must not fail the rest. It is
	// still bounded by Timeout × Attempts.
	detached := context.WithoutCancel(ctx)
	c, joined := r.flight.do(k, func() *answer { return r.resolve(detached, k) })
	if joined {
		r.coalesced.Add(1)
	}
	select {
	case <-c.done:
	case <-ctx.Done():
		r.errs.Add(1)
		return nil, ctxError(name, ctx.Err())
	}
	a, err := c.ans.result(name)
	if c.ans.fail != nil {
		r.errs.Add(1)
	}
	return a, err
}

// result turns an answer into what a lookup returns, with a fresh error for
// each caller so that no two callers share a mutable *net.DNSError.
func (a *answer) result(name string) (*answer, error) {
	switch {
	case a.fail != nil:
		return nil, &net.DNSError{
			Err:         a.fail.msg,
			Name:        name,
			Server:      a.server,
			IsTimeout:   a.fail.timeout,
			IsTemporary: true,
		}
	case a.negative:
		return nil, notFound(name, a.server)
	}
	return a, nil
}

// resolve asks the network and caches the answer.
func (r *Resolver) resolve(ctx context.Context, k key) *answer {
	// A resolution for k may have finished between our cache miss and the
	// start of this one.
	if a, ok := r.cached(k); ok {
		return a
	}
	a := r.exchange(ctx, k)
	if a.fail == nil && r.cache != nil && a.expires.After(r.now()) {
		r.cache.Add(k, a)
	}
	return a
}

// exchange sends the question to the servers in turn until one gives an
// answer or the attempts run out.
func (r *Resolver) exchange(ctx context.Context, k key) *answer {
	m := new(dns.Msg)
	m.SetQuestion(k.name, k.qtype) // sets RD: we talk to recursive resolvers
	// RFC 6891: advertise a UDP payload size so answers up to it need no
	// TCP retry.
	m.SetEdns0(ednsSize, false)
	edns := true

	last := &answer{fail: &failure{msg: "no answer"}}
	for i := 0; i < r.attempts; i++ {
		server := r.servers[i%len(r.servers)]
		resp, fail := r.exchangeOne(ctx, m, server)
		if fail != nil {
			last = &answer{server: server, fail: fail}
			continue
		}
		if resp.Rcode == dns.RcodeFormatError && edns {
			// RFC 6891 §7: a server that does not understand EDNS may
			// answer FORMERR; ask it again without the OPT record. This
			// retry does not use up an attempt.
			m.Extra = nil
			edns = false
			i--
			continue
		}
		if !answers(resp, k) {
			last = &answer{server: server, fail: &failure{msg: "server misbehaving"}}
			continue
		}
		switch resp.Rcode {
		case dns.RcodeSuccess, dns.RcodeNameError:
			return r.interpret(k, resp, server)
		}
		// SERVFAIL, REFUSED, NOTIMP, …: the server cannot answer now.
		// Package net reports these as "server misbehaving", temporary.
		last = &answer{server: server, fail: &failure{msg: "server misbehaving"}}
		if len(r.servers) == 1 {
			// Asking the same server again at once is unlikely to help.
			break
		}
	}
	return last
}

// exchangeOne is one attempt at one server: UDP, then TCP if the UDP answer
// was truncated, all within one Timeout.
func (r *Resolver) exchangeOne(ctx context.Context, m *dns.Msg, server string) (*dns.Msg, *failure) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()

	m.Id = dns.Id() // a fresh ID per attempt, so a late answer to an earlier one is ignored
	r.queries.Add(1)
	udp := dns.Client{Net: "udp", UDPSize: ednsSize, Timeout: r.timeout}
	resp, _, err := udp.ExchangeContext(ctx, m, server)
	if err != nil {
		return nil, netFailure(err)
	}
	if !resp.Truncated {
		return resp, nil
	}
	// RFC 7766 §5 / RFC 2181 §9: a truncated answer is incomplete; discard
	// it and ask again over TCP.
	r.queries.Add(1)
	tcp := dns.Client{Net: "tcp", Timeout: r.timeout}
	resp, _, err = tcp.ExchangeContext(ctx, m, server)
	if err != nil {
		f := netFailure(err)
		f.msg = "truncated answer and TCP retry failed: " + f.msg
		return nil, f
	}
	return resp, nil
}

// answers reports whether resp is a response to the question k; anything
// else (a stray or spoofed packet that matched the ID) is not used.
func answers(resp *dns.Msg, k key) bool {
	if !resp.Response || len(resp.Question) != 1 {
		return false
	}
	q := resp.Question[0]
	return q.Qtype == k.qtype && q.Qclass == dns.ClassINET && strings.EqualFold(q.Name, k.name)
}

// interpret extracts the records of the asked type from a NOERROR or
// NXDOMAIN response, following a CNAME chain inside the answer section, and
// computes how long the result may be cached.
func (r *Resolver) interpret(k key, resp *dns.Msg, server string) *answer {
	name := k.name
	minTTL := ^uint32(0)
	var rrs []dns.RR
	for hop := 0; ; hop++ {
		if hop > maxCNAMEHops {
			return &answer{server: server, fail: &failure{msg: "CNAME chain too long"}}
		}
		var target string
		var targetTTL uint32
		for _, rr := range resp.Answer {
			h := rr.Header()
			if h.Class != dns.ClassINET || !strings.EqualFold(h.Name, name) {
				continue
			}
			switch {
			case h.Rrtype == k.qtype:
				rrs = append(rrs, rr)
				minTTL = min(minTTL, h.Ttl)
			case h.Rrtype == dns.TypeCNAME && target == "":
				target, targetTTL = rr.(*dns.CNAME).Target, h.Ttl
			}
		}
		if len(rrs) > 0 || target == "" {
			break
		}
		// The chain's TTLs bound the result's lifetime too.
		minTTL = min(minTTL, targetTTL)
		name = target
	}

	now := r.now()
	if len(rrs) > 0 {
		ttl := min(time.Duration(minTTL)*time.Second, r.maxTTL)
		a := &answer{rrs: rrs, server: server, expires: now.Add(ttl)}
		if k.qtype == dns.TypeTXT {
			// RFC 7208 §3.3, RFC 6376 §3.6.2.2: the strings of one TXT
			// record are concatenated, as net.LookupTXT does.
			for _, rr := range rrs {
				a.txt = append(a.txt, unescapeTXT(strings.Join(rr.(*dns.TXT).Txt, "")))
			}
		}
		return a
	}

	// NXDOMAIN, or NODATA (NOERROR without records of the type; RFC 2308
	// §2.2). Both are negative answers cached per RFC 2308 §5: the TTL is
	// min(SOA TTL, SOA MINIMUM) of the SOA in the authority section.
	ttl := r.negTTL
	for _, rr := range resp.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			ttl = min(ttl, time.Duration(min(soa.Hdr.Ttl, soa.Minttl))*time.Second)
			break
		}
	}
	if minTTL != ^uint32(0) {
		ttl = min(ttl, time.Duration(minTTL)*time.Second)
	}
	return &answer{negative: true, server: server, expires: now.Add(ttl)}
}

// netFailure classifies a transport error.
func netFailure(err error) *failure {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return &failure{msg: "i/o timeout", timeout: true}
	}
	return &failure{msg: err.Error()}
}

// notFound is the error for NXDOMAIN and NODATA, worded as package net's.
func notFound(name, server string) *net.DNSError {
	return &net.DNSError{Err: "no such host", Name: name, Server: server, IsNotFound: true}
}

// ctxError is the error for a lookup whose context ended before an answer:
// a timeout, so that callers retry later rather than treat it as permanent.
// errors.Is still finds the context error through UnwrapErr.
func ctxError(name string, err error) *net.DNSError {
	return &net.DNSError{Err: err.Error(), Name: name, IsTimeout: true, IsTemporary: true, UnwrapErr: err}
}

// canonical returns name as a lower-case FQDN, the cache and coalescing key,
// and whether it is a valid domain name. It does not allocate when name is
// already canonical, which keeps cache hits cheap.
func canonical(name string) (string, bool) {
	if name == "" || name == "." {
		return "", false
	}
	name = escapeName(name)
	for i := 0; i < len(name); i++ {
		if c := name[i]; 'A' <= c && c <= 'Z' {
			name = strings.ToLower(name)
			break
		}
	}
	if name[len(name)-1] != '.' {
		name += "."
	}
	if _, ok := dns.IsDomainName(name); !ok || len(name) > 254 {
		return "", false
	}
	return name, true
}

// escapeName turns a name of raw octets into miekg/dns's presentation form:
// a label may hold any octet (RFC 2181 §11), and an SPF macro can expand to
// a space or a quote, which must go out as that octet, not as syntax.
func escapeName(name string) string {
	clean := true
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(`()";@$\`, c) >= 0 {
			clean = false
			break
		}
	}
	if clean {
		return name
	}
	var sb strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()";@$\`, c) >= 0 {
			fmt.Fprintf(&sb, "\\%03d", c)
			continue
		}
		sb.WriteByte(c)
	}
	return sb.String()
}

// unescapeTXT turns miekg/dns's presentation form of TXT data (\DDD, \")
// back into the octets the record holds, as net.LookupTXT returns them.
func unescapeTXT(s string) string {
	if strings.IndexByte(s, '\\') < 0 {
		return s
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			out = append(out, c)
			continue
		}
		if i+3 < len(s) && isDigit(s[i+1]) && isDigit(s[i+2]) && isDigit(s[i+3]) {
			n := int(s[i+1]-'0')*100 + int(s[i+2]-'0')*10 + int(s[i+3]-'0')
			if n <= 255 {
				out = append(out, byte(n))
				i += 3
				continue
			}
		}
		out = append(out, s[i+1])
		i++
	}
	return string(out)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
