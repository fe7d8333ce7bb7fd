package uribl

import (
	"context"
	"slices"
	"testing"
	"time"

	"mxguard/checks/check"
	"mxguard/checks/check/checktest"
	"mxguard/checks/resolver"
	"mxguard/checks/resolver/dnstest"
)

// zoneFile holds dbl.test (answers in 127.0.1.0/24 like Spamhaus DBL,
// with its error code for one name), multi.test (SURBL-style bitmasks)
// and ip.test (an IP list).
const zoneFile = "../../testdata/zones/uribl.zone"

func newResolver(t *testing.T) *resolver.Resolver {
	t.Helper()
	r, _ := newServer(t)
	return r
}

// newServer is newResolver with the DNS server, whose answers a test can
// change (ServFail).
func newServer(t *testing.T) (*resolver.Resolver, *dnstest.Server) {
	t.Helper()
	s := dnstest.StartFiles(t, zoneFile)
	r, err := resolver.New(resolver.Options{Servers: []string{s.Addr()}, Timeout: 2 * time.Second, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	return r, s
}

// define builds the check as the engine does, from a config section.
func define(t *testing.T, c Config) check.Def {
	t.Helper()
	return Facts{}.Define(check.Env{Resolver: newResolver(t), Section: c})
}

func run(t *testing.T, d check.Def, m string) (check.Result, Facts) {
	t.Helper()
	if d.Run == nil {
		t.Fatal("check not enabled")
	}
	r := d.Run(context.Background(), checktest.View{Message: []byte(m)})
	f, _ := r.Facts.(Facts)
	return r, f
}

var testConfig = Config{MaxDomains: 20, Zones: []ZoneConfig{
	{Zone: "dbl.test", Weight: 10, Codes: "127.0.1.2-127.0.1.99"},
	{Zone: "ip.test", Weight: 5},
}}

// TestListedDomain shows a link to a listed domain, behind an entity and
// a redirect, found listed, with the score of its zone.
func TestListedDomain(t *testing.T) {
	d := define(t, testConfig)
	r, f := run(t, d, msg("text/html", `<a href="https://good.example/redirect?u=https://www.bad&#x2e;example/">x</a>`))
	if r.Result != "listed" || f.Score != 10 || !slices.Equal(f.Listed, []string{"dbl.test"}) ||
		!slices.Equal(f.ListedDomains, []string{"bad.example=dbl.test"}) {
		t.Errorf("result %q detail %q facts %+v", r.Result, r.Detail, f)
	}
	if f.URLs != 2 || !slices.Equal(f.Domains, []string{"good.example", "bad.example"}) {
		t.Errorf("urls %d domains %q", f.URLs, f.Domains)
	}
}

// TestCodesFilter shows a return code outside the zone's codes not a
// listing (DBL's abused-legit range 127.0.1.102 is not counted here), and
// the list's error code an error, not a listing.
func TestCodesFilter(t *testing.T) {
	d := define(t, testConfig)
	r, f := run(t, d, msg("text/plain", "http://abused.example/ http://refused.example/ http://clean.example/"))
	if r.Result != "none" || f.Score != 0 || len(f.Listed) != 0 {
		t.Errorf("result %q facts %+v, want none", r.Result, f)
	}
	if !slices.Equal(f.Errors, []string{"refused.example=dbl.test: error code 127.255.255.254"}) {
		t.Errorf("errors %q", f.Errors)
	}
}

// TestScoreOncePerZone shows two listed domains in one zone weigh the
// zone's weight once, and an address in the IP list adds its zone's.
func TestScoreOncePerZone(t *testing.T) {
	d := define(t, testConfig)
	r, f := run(t, d, msg("text/plain", "http://bad.example/ http://spam.example/ http://192.0.2.1/ http://[2001:db8::1]/"))
	if r.Result != "listed" || f.Score != 15 {
		t.Errorf("result %q score %v, want listed 15 (%+v)", r.Result, f.Score, f)
	}
	want := []string{"bad.example=dbl.test", "spam.example=dbl.test", "192.0.2.1=ip.test", "2001:db8::1=ip.test"}
	if !slices.Equal(f.ListedDomains, want) {
		t.Errorf("listed %q, want %q", f.ListedDomains, want)
	}
}

// TestMaxDomains shows the lookups bounded: a listed domain past the bound
// is not asked, and the facts say the rest was not looked at.
func TestMaxDomains(t *testing.T) {
	c := testConfig
	c.MaxDomains = 1
	r, f := run(t, define(t, c), msg("text/plain", "http://clean.example/ http://bad.example/"))
	if r.Result != "none" || !f.Truncated || !slices.Equal(f.Domains, []string{"clean.example"}) {
		t.Errorf("result %q facts %+v", r.Result, f)
	}
}

// TestOff shows the check off without zones or without DNS.
func TestOff(t *testing.T) {
	if d := (Facts{}).Define(check.Env{Resolver: newResolver(t), Section: DefaultConfig()}); d.Run != nil {
		t.Error("enabled without zones")
	}
	if d := (Facts{}).Define(check.Env{Section: testConfig}); d.Run != nil {
		t.Error("enabled without a resolver")
	}
}
