package uribl

import (
	"slices"
	"strings"
	"testing"
	"time"

	"mxguard/checks/check"
	"mxguard/checks/resolver"
	"mxguard/checks/resolver/dnstest"
)

// TestFailedLookup shows a lookup that fails (SERVFAIL, REFUSED, no answer
// at all) read as the dnsbl check reads a failed list: an error in
// uribl.errors and the detail, never a listing and never a temperror of
// the check, whose result is what the other lookups gave.
func TestFailedLookup(t *testing.T) {
	for _, c := range []struct {
		name  string
		fail  func(s *dnstest.Server, qname string)
		links string
		// The result and listings the other lookups give.
		result string
		codes  []string
	}{
		{"servfail, another listed", (*dnstest.Server).ServFail, "http://failing.example/ http://bad.example/", "listed", []string{"bad.example=dbl.test=127.0.1.2"}},
		{"servfail alone", (*dnstest.Server).ServFail, "http://failing.example/", "none", nil},
		{"refused", (*dnstest.Server).Refuse, "http://failing.example/ http://clean.example/", "none", nil},
		{"timeout", (*dnstest.Server).Drop, "http://failing.example/", "none", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := dnstest.StartFiles(t, zoneFile)
			c.fail(s, "failing.example.dbl.test")
			// Short, so the dropped query times out soon; one attempt.
			r, err := resolver.New(resolver.Options{Servers: []string{s.Addr()}, Timeout: 300 * time.Millisecond, Attempts: 1})
			if err != nil {
				t.Fatal(err)
			}
			d := Facts{}.Define(check.Env{Resolver: r, Section: testConfig})
			res, f := run(t, d, msg("text/plain", c.links))
			if res.Result != c.result || !slices.Equal(f.Codes, c.codes) {
				t.Errorf("result %q codes %q, want %q %q", res.Result, f.Codes, c.result, c.codes)
			}
			want := []string{"failing.example=dbl.test: temperror"}
			if !slices.Equal(f.Errors, want) {
				t.Errorf("errors %q, want %q", f.Errors, want)
			}
			if !slices.Contains(f.Domains, "failing.example") || len(f.Listed) != len(c.codes) {
				t.Errorf("facts %+v", f)
			}
			if want := "failed: failing.example=dbl.test: temperror"; !strings.Contains(res.Detail, want) {
				t.Errorf("detail %q lacks %q", res.Detail, want)
			}
		})
	}
}
