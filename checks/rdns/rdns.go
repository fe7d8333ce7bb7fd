// Package rdns checks the client's reverse DNS with forward confirmation
// (FCrDNS): a PTR name of the client's address that resolves back to the
// address. It is what Postfix's reject_unknown_client_hostname tests: a
// mail server has a name that its owner maintains both ways, a bot on a
// dynamic address usually has none or a generic one that does not
// resolve back.
package rdns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"mxguard/checks/check"
)

// MaxNames bounds the PTR names whose addresses are looked up: a client
// controls its reverse zone and could list hundreds (RFC 7208 §4.6.4 sets
// the same bound of 10 for SPF's ptr mechanism).
const MaxNames = 10

// The results.
const (
	Pass = "pass" // a PTR name resolves back to the client's address
	Fail = "fail" // PTR names exist, none resolves back
	None = "none" // no PTR record
	// Temperror: a lookup failed temporarily and nothing confirmed.
	Temperror = check.Temperror
)

// Resolver is what the check asks.
type Resolver interface {
	LookupAddr(ctx context.Context, addr string) ([]string, error)
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

// Facts are the reverse DNS check's facts.
type Facts struct {
	Result    string   `expr:"result" json:"result" doc:"forward-confirmed reverse DNS of the client: pass (a PTR name resolves back to its address), fail (none does), none (no PTR record), temperror" values:"pass,fail,none,temperror,\"\""`
	Names     []string `expr:"names" json:"names" doc:"the client's PTR names, lower case, without the trailing dot"`
	Confirmed string   `expr:"confirmed" json:"confirmed" doc:"the first PTR name that resolves back to the client's address (\"\" when none does); also client.ptr"`
}

// ClientPTR is the verified name the engine puts in client.ptr and in the
// verdict log's client_ptr.
func (f Facts) ClientPTR() string { return f.Confirmed }

// Define builds the check: at connect, when there is DNS, and only for
// rules that name it: many legitimate senders have no PTR record or a slow
// one, so a rule that turns every temperror into 4xx must not wait on it.
func (Facts) Define(env check.Env) check.Def {
	d := check.Def{Stage: check.Connect, OnlyNamed: true}
	if env.Resolver == nil {
		return d
	}
	r := env.Resolver
	d.Run = func(ctx context.Context, v check.View) check.Result {
		return Check(ctx, r, v.Client())
	}
	d.Quick = check.CacheFirst(d.Run)
	return d
}

// Check looks up ip's PTR names and confirms them forward.
func Check(ctx context.Context, r Resolver, ip netip.Addr) check.Result {
	ip = ip.Unmap()
	names, err := r.LookupAddr(ctx, ip.String())
	if err != nil {
		if temporary(err) {
			return check.Result{Result: Temperror, Detail: fmt.Sprintf("PTR of %s: %v", ip, err), Facts: Facts{Result: Temperror}}
		}
		return check.Result{Result: None, Detail: "no PTR record for " + ip.String(), Facts: Facts{Result: None}}
	}
	f := Facts{}
	for _, n := range names {
		n = strings.ToLower(strings.TrimSuffix(n, "."))
		if n != "" {
			f.Names = append(f.Names, n)
		}
	}
	if len(f.Names) == 0 {
		f.Result = None
		return check.Result{Result: None, Detail: "no PTR record for " + ip.String(), Facts: f}
	}
	var tempErr error
	for i, n := range f.Names {
		if i == MaxNames {
			break
		}
		addrs, err := r.LookupIPAddr(ctx, n)
		if err != nil {
			if temporary(err) && tempErr == nil {
				tempErr = err
			}
			continue
		}
		for _, a := range addrs {
			if got, ok := netip.AddrFromSlice(a.IP); ok && got.Unmap() == ip {
				f.Result, f.Confirmed = Pass, n
				return check.Result{Result: Pass, Detail: n + " resolves back to " + ip.String(), Facts: f}
			}
		}
	}
	if tempErr != nil {
		f.Result = Temperror
		return check.Result{Result: Temperror, Detail: fmt.Sprintf("forward lookup: %v", tempErr), Facts: f}
	}
	f.Result = Fail
	return check.Result{Result: Fail, Detail: fmt.Sprintf("no PTR name of %s resolves back to it: %s", ip, strings.Join(f.Names, ", ")), Facts: f}
}

// temporary reports whether err is a failure that asking again might
// mend (a timeout, SERVFAIL), as the resolver's errors say.
func temporary(err error) bool {
	var de *net.DNSError
	if errors.As(err, &de) {
		return de.IsTemporary || de.IsTimeout
	}
	return !errors.Is(err, context.Canceled)
}
