package policy

import (
	"crypto/tls"
	"fmt"
	"maps"
	"mxguard/checks/greylist"
	"mxguard/checks/rdns"
	store "mxguard/internal/state"
	"slices"
	"strings"
	"testing"
	"time"

	msgdmarc "github.com/emersion/go-msgauth/dmarc"

	"mxguard/checks/clamav"
	"mxguard/checks/dkim"
	"mxguard/checks/dmarc"
	"mxguard/checks/dnsbl"
	"mxguard/checks/headers"
	"mxguard/checks/rcpt"
	"mxguard/checks/resolver"
	"mxguard/checks/resolver/dnstest"
	"mxguard/checks/rspamd"
	"mxguard/checks/spf"
	"mxguard/checks/uribl"
	"mxguard/rules"
)

// TestRulesNeverMatchingValue: a condition comparing a fact with a value
// the fact never takes does not load; the values it does take load.
func TestRulesNeverMatchingValue(t *testing.T) {
	const spfValues = `expected one of pass, fail, softfail, neutral, none, temperror, permerror, ""`
	for _, c := range []struct{ stage, when, want string }{
		{"mail", `spf.result == "Fail"`, `spf.result is never "Fail": ` + spfValues + ` (did you mean "fail"?)`},
		{"data", `dmarc.result == "passed"`, `dmarc.result is never "passed": expected one of pass, fail, none, temperror, permerror, ""`},
		{"mail", `spf.helo_result != "hardfail"`, `spf.helo_result is never "hardfail": ` + spfValues},
		{"mail", `spf.identity == "mail_from"`, `spf.identity is never "mail_from": expected one of mailfrom, helo, ""`},
		{"data", `dkim.result == "signed"`, `dkim.result is never "signed": expected one of pass, fail, policy, neutral, temperror, permerror, none, ""`},
		{"data", `any(dkim.signatures, .result == "none")`, `dkim.signatures[].result is never "none": expected one of pass, fail, policy, temperror, permerror`},
		{"data", `dmarc.policy in ["reject", "p=reject"]`, `dmarc.policy is never "p=reject": expected one of none, quarantine, reject, ""`},
		{"rcpt", `rcpt_verify.result == "unkown"`, `rcpt_verify.result is never "unkown": expected one of known, unknown, temperror, unchecked`},
		{"data", `checks.spf.result == "Pass"`, `checks.spf.result is never "Pass": expected one of pass, fail, softfail, policy, neutral, none, temperror, permerror, listed, known, unknown, unchecked, new, early, passed, allowed, infected, clean, scanned, "" (did you mean "pass"?)`},
		{"data", `stage == "DATA"`, `stage is never "DATA": expected one of connect, helo, mail, rcpt, data (did you mean "data"?)`},
		{"connect", `tls_version == "TLSv1.3"`, `tls_version is never "TLSv1.3": expected one of "TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3", ""`},
		{"data", `"SPF" in temperrors`, `temperrors never holds "SPF": expected one of dnsbl, rdns, spf, dkim, dmarc, headers, greylist, harvest, mime, clamav, uribl, rspamd (did you mean "spf"?)`},
		{"data", `"from" in headers.duplicates`, `headers.duplicates never holds "from": expected one of Bcc, Cc, Date, From, In-Reply-To, Message-ID, References, Reply-To, Sender, Subject, To (did you mean "From"?)`},

		{"mail", `spf.result in ["fail", "softfail"] && spf.identity == "mailfrom" && spf.helo_result != "pass"`, ""},
		{"data", `checks.clamav.result in ["infected", "clean"]`, ""},
		{"data", `dmarc.result == "fail" && dmarc.policy == "reject" || dmarc.result == ""`, ""},
		{"data", `dkim.result == "none" || any(dkim.signatures, .result == "pass" && .algorithm == "rsa-sha1")`, ""},
		{"rcpt", `rcpt_verify.result in ["known", "unchecked"]`, ""},
		{"data", `checks.dnsbl.result == "listed" || checks.headers.result == "fail" || "dkim" in temperrors`, ""},
		{"data", `"From" in headers.duplicates && stage == "data" && tls_version != "TLS 1.3"`, ""},
		{"data", `from.domain == "Example.ORG" || dmarc.detail == "anything" || spf.result matches "^Fail"`, ""},
	} {
		t.Run(c.when, func(t *testing.T) {
			src := fmt.Sprintf("rules:\n  - name: r\n    stage: %s\n    when: '%s'\n    action: reject\n", c.stage, c.when)
			_, err := rules.Parse("r.yaml", []byte(src), RulesOptions())
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.HasSuffix(err.Error(), "rules[0].when: "+c.want) || strings.Count(err.Error(), "\n") > 0 {
				t.Fatalf("got  %v\nwant r.yaml:4:N: rules[0].when: %s", err, c.want)
			}
		})
	}
}

// TestFactValuesAreTheChecks: the values each fact declares are the values
// the code that sets it produces, so that the lint neither refuses a
// value that happens nor lets through one that never does.
func TestFactValuesAreTheChecks(t *testing.T) {
	spfResults := []string{spf.Pass, spf.Fail, spf.SoftFail, spf.Neutral, spf.None, spf.TempError, spf.PermError}
	dkimSig := []string{dkim.Pass, dkim.Fail, dkim.Policy, dkim.Temperror, dkim.Permerror}
	dkimResults := append(slices.Clone(dkimSig), dkim.Neutral, dkim.None)
	dmarcResults := []string{dmarc.Pass, dmarc.Fail, dmarc.None, dmarc.TempError, dmarc.PermError}
	rcptResults := []string{string(rcpt.Known), string(rcpt.Unknown), string(rcpt.Temperror), string(rcpt.Unchecked)}
	var stages []string
	for _, s := range []Stage{StageConnect, StageHelo, StageMail, StageRcpt, StageData} {
		stages = append(stages, s.String())
	}
	var tlsVersions []string
	for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11, tls.VersionTLS12, tls.VersionTLS13} {
		tlsVersions = append(tlsVersions, tls.VersionName(v))
	}
	// checks.NAME.result: any check's result (dnsbl says listed or none,
	// headers pass or fail), and in a replay the recipients' verification.
	var any []string
	greyStates := []string{string(store.GreyNew), string(store.GreyEarly), string(store.GreyPassed), string(store.GreyKnown), greylist.Allowed}
	for _, set := range [][]string{spfResults, dkimResults, dmarcResults, {"listed"}, rcptResults, greyStates, {rdns.Fail, rdns.None}, {clamav.Infected, clamav.Clean}, {rspamd.Scanned}} {
		for _, v := range set {
			if !slices.Contains(any, v) {
				any = append(any, v)
			}
		}
	}
	want := map[string][]string{
		"stage":                    stages,
		"tls_version":              append(tlsVersions, ""),
		"rcpt_verify.result":       rcptResults,
		"spf.result":               append(slices.Clone(spfResults), ""),
		"spf.helo_result":          append(slices.Clone(spfResults), ""),
		"spf.identity":             {spf.IdentityMailFrom, spf.IdentityHELO, ""},
		"dkim.result":              append(slices.Clone(dkimResults), ""),
		"dkim.signatures[].result": dkimSig,
		"dmarc.result":             append(slices.Clone(dmarcResults), ""),
		"dmarc.policy":             {string(msgdmarc.PolicyNone), string(msgdmarc.PolicyQuarantine), string(msgdmarc.PolicyReject), ""},
		"dmarc.applied_policy":     appliedPolicies(),
		"checks.NAME.result":       append(any, ""),
		"temperrors":               registeredChecks(t),
		"headers.duplicates":       duplicatedFields(t),
		"greylist.state":           append(slices.Clone(greyStates), ""),
		"rdns.result":              {rdns.Pass, rdns.Fail, rdns.None, rdns.Temperror, ""},
		"rspamd.action": {rspamd.NoAction, rspamd.Greylist, rspamd.AddHeader, rspamd.RewriteSubject, rspamd.SoftReject,
			rspamd.Reject, rspamd.Discard, rspamd.Quarantine, ""},
	}
	got := map[string][]string{}
	for _, f := range Schema() {
		if f.Values != nil {
			got[f.Name] = f.Values
		}
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		w := slices.Clone(want[name])
		g := slices.Clone(got[name])
		slices.Sort(w)
		slices.Sort(g)
		if !slices.Equal(g, w) {
			t.Errorf("%s declares %q, the code gives %q", name, got[name], want[name])
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s declares values that no test holds to the code: add it here", name)
		}
	}
}

// appliedPolicies are the policies pct sampling gives, in the sample and
// out of it, for every policy a record can ask for, and "" without one.
func appliedPolicies() []string {
	var out []string
	for _, p := range []msgdmarc.Policy{msgdmarc.PolicyNone, msgdmarc.PolicyQuarantine, msgdmarc.PolicyReject, ""} {
		for _, pct := range []int{0, 100} {
			a, _ := dmarc.Applied(string(p), pct, "example.org", "id@example.org")
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	return out
}

// registeredChecks are the names of the checks an engine with every check
// configured registers.
func registeredChecks(t *testing.T) []string {
	s := dnstest.Start(t)
	r, err := resolver.New(resolver.Options{Servers: []string{s.Addr()}, Timeout: time.Second, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	st := store.NewMemory(store.MemoryOptions{})
	t.Cleanup(func() { st.Close() })
	e := NewEngine(Options{Domains: []string{"example.org"}, Resolver: r, State: st, Sections: map[string]any{
		"dnsbl": []dnsbl.Zone{{Zone: "bl.test", Weight: 1}}, "greylist": greylist.Config{Enabled: true},
		"clamav": clamav.Config{Address: "unix:/nonexistent/clamd.ctl"},
		"uribl":  uribl.Config{MaxDomains: 1, Zones: []uribl.ZoneConfig{{Zone: "dbl.test", Weight: 1}}},
		"rspamd": rspamd.Config{URL: "http://127.0.0.1:11333"}}})
	return slices.Sorted(maps.Keys(e.checks))
}

// duplicatedFields are the field names the headers check reports as
// duplicated, in its spelling, for a header that repeats every field
// RFC 5322 §3.6 limits to one and a few it does not.
func duplicatedFields(t *testing.T) []string {
	var b strings.Builder
	for _, name := range []string{"date", "from", "sender", "reply-to", "to", "cc", "bcc", "message-id", "in-reply-to",
		"references", "subject", "received", "comments", "keywords", "resent-date", "x-other"} {
		fmt.Fprintf(&b, "%s: x\r\n%s: y\r\n", name, strings.ToUpper(name))
	}
	return headers.Check([]byte(b.String()+"\r\n"), headers.Options{}).Duplicates
}
