package rules

import (
	"fmt"
	"strings"
	"testing"
)

// TestNeverMatchingLiteral: an exact comparison of a fact that declares
// its values with a literal it never takes is a load error at the
// literal's place; other comparisons, and facts without declared values,
// load.
func TestNeverMatchingLiteral(t *testing.T) {
	const passFail = `expected one of pass, fail, ""`
	for _, c := range []struct {
		name, when string
		at         string // the literal the error points at ("" when the rule loads)
		msg        string
	}{
		{"equal", `auth.result == "Fail"`, `"Fail"`, `auth.result is never "Fail": ` + passFail + ` (did you mean "fail"?)`},
		{"literal first", `"passed" == auth.result`, `"passed"`, `auth.result is never "passed": ` + passFail},
		{"not equal", `auth.result != "softfail"`, `"softfail"`, `auth.result is never "softfail": ` + passFail},
		{"in list", `auth.result in ["pass", "Pass"]`, `"Pass"`, `auth.result is never "Pass": ` + passFail + ` (did you mean "pass"?)`},
		{"not in list", `auth.result not in ["none"]`, `"none"`, `auth.result is never "none": ` + passFail},
		{"deep in the condition", `size > 1 && (helo == "x" || auth.result == "neutral")`, `"neutral"`, `auth.result is never "neutral": ` + passFail},
		{"value with a space", `tls_version == "TLSv1.3"`, `"TLSv1.3"`, `tls_version is never "TLSv1.3": expected one of "", "TLS 1.2", "TLS 1.3"`},
		{"list element by index", `sigs[0].result == "none"`, `"none"`, `sigs[].result is never "none": expected one of pass, fail`},
		{"list element in a predicate", `any(sigs, .result == "none")`, `"none"`, `sigs[].result is never "none": expected one of pass, fail`},
		{"list element by pointer", `any(sigs, {#.result == "none"})`, `"none"`, `sigs[].result is never "none": expected one of pass, fail`},
		{"filtered list", `len(filter(sigs, .domain == "x.test")) > 0 && all(filter(sigs, .domain == "x.test"), .result != "neutral")`, `"neutral"`, `sigs[].result is never "neutral": expected one of pass, fail`},
		{"map entry", `results.spf.result == "none"`, `"none"`, `results.spf.result is never "none": expected one of pass, fail`},
		{"map entry by index", `results["spf"].result == "none"`, `"none"`, `results.spf.result is never "none": expected one of pass, fail`},
		{"map values", `any(values(results), .result == "none")`, `"none"`, `results.NAME.result is never "none": expected one of pass, fail`},
		{"string list membership", `"gamma" in names`, `"gamma"`, `names never holds "gamma": expected one of alpha, beta`},
		{"string list predicate", `any(names, # == "gamma")`, `"gamma"`, `names never holds "gamma": expected one of alpha, beta`},
		{"string list predicate not in", `any(names, {# not in ["alpha", "gamma"]})`, `"gamma"`, `names never holds "gamma": expected one of alpha, beta`},
		{"inner predicate", `any(sigs, any(names, # == "gamma"))`, `"gamma"`, `names never holds "gamma": expected one of alpha, beta`},

		{"declared value", `auth.result == "fail" || auth.result == ""`, "", ""},
		{"declared values in a list", `auth.result in ["pass", "fail"] && tls_version != "TLS 1.3"`, "", ""},
		{"matches is not exact", `auth.result matches "^F"`, "", ""},
		{"startsWith is not exact", `auth.result startsWith "F" || auth.result endsWith "L" || auth.result contains "X"`, "", ""},
		{"a function of the fact", `lower(auth.result) == "Fail" || upper(auth.result) == "FAIL"`, "", ""},
		{"fact without values", `auth.detail == "Fail" && helo == "Fail" && results.x.domain == "Fail"`, "", ""},
		{"two facts", `auth.result == auth.detail`, "", ""},
		{"open list", `"gamma" in words || any(words, # == "gamma")`, "", ""},
		{"open list inside a predicate", `any(sigs, any(words, # == "none"))`, "", ""},
		{"unresolved collection", `any(map(sigs, .domain), # == "none")`, "", ""},
		{"map key", `"none" in results`, "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := fmt.Sprintf("rules:\n  - name: r\n    when: '%s'\n    action: reject\n", c.when)
			_, err := Parse("t.yaml", []byte(src), testOpts)
			if c.at == "" {
				if err != nil {
					t.Fatalf("%s: %v", c.when, err)
				}
				return
			}
			// The condition starts at column 12, after the quote.
			want := fmt.Sprintf("t.yaml:3:%d: rules[0].when: %s", 12+strings.LastIndex(c.when, c.at), c.msg)
			if err == nil || err.Error() != want {
				t.Fatalf("%s:\n got %v\nwant %s", c.when, err, want)
			}
		})
	}
}

// TestNeverMatchingEveryLiteral: every literal that never matches is
// reported, not only the first.
func TestNeverMatchingEveryLiteral(t *testing.T) {
	_, err := Parse("t.yaml", []byte("rules:\n  - name: r\n    when: auth.result in [\"Fail\", \"pass\", \"x\"]\n    action: reject\n"), testOpts)
	want := "t.yaml:3:27: rules[0].when: auth.result is never \"Fail\": expected one of pass, fail, \"\" (did you mean \"fail\"?)\n" +
		"t.yaml:3:43: rules[0].when: auth.result is never \"x\": expected one of pass, fail, \"\""
	if err == nil || err.Error() != want {
		t.Fatalf("got\n%v\nwant\n%s", err, want)
	}
}
