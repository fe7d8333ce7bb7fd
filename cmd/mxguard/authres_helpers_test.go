package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/authres"
)

// arResult is one result of an Authentication-Results field as a reader
// sees it: method, result and properties ("ptype.property" → value, the
// value with its quoting undone).
type arResult struct {
	Method string
	Result string
	Props  map[string]string
}

func (r arResult) String() string {
	keys := make([]string, 0, len(r.Props))
	for k := range r.Props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s := r.Method + "=" + r.Result
	for _, k := range keys {
		s += fmt.Sprintf(" %s=%q", k, r.Props[k])
	}
	return s
}

func formatResults(rs []arResult) string {
	var b strings.Builder
	for _, r := range rs {
		b.WriteString("\n\t" + r.String())
	}
	return b.String()
}

// python is Debian's interpreter, which has the python3-authres package;
// the python3 on PATH may be another one.
const python = "/usr/bin/python3"

// pyParse parses each Authentication-Results value with python3-authres,
// a full RFC 8601 parser.
const pyParse = `
import json, sys
import authres
out = []
for v in json.load(sys.stdin):
    try:
        h = authres.AuthenticationResultsHeader.parse('Authentication-Results: ' + v)
    except Exception as e:
        out.append({"error": "%s: %s" % (type(e).__name__, e)})
        continue
    out.append({"id": h.authserv_id, "results": [
        {"method": r.method, "result": r.result, "reason": getattr(r, "reason", None),
         "props": [[p.type + "." + p.name, p.value] for p in r.properties]}
        for r in h.results]})
json.dump(out, sys.stdout)
`

// requirePythonAuthres fails the test, with the fix, when Debian's python
// cannot import authres.
func requirePythonAuthres(t *testing.T) {
	t.Helper()
	if out, err := exec.Command(python, "-c", "import authres").CombinedOutput(); err != nil {
		t.Fatalf("%s cannot import authres (install the Debian package python3-authres; .ci/run does): %v\n%s", python, err, out)
	}
}

// parsePython parses each value (unfolded, without the field name) with
// python3-authres. python3-authres keeps a quoted-string's quoted-pairs as
// they were written; they are undone here (RFC 5322 §3.2.4), which is safe
// since a value that is not quoted cannot hold a backslash.
func parsePython(t *testing.T, values []string) (ids []string, results [][]arResult) {
	t.Helper()
	ids, results, errs := parsePythonEach(t, values)
	for i, e := range errs {
		if e != "" {
			t.Fatalf("python3-authres cannot parse %q: %s", values[i], e)
		}
	}
	return ids, results
}

// parsePythonEach is parsePython for values python3-authres may refuse:
// errs[i] is its error for values[i], or "".
func parsePythonEach(t *testing.T, values []string) (ids []string, results [][]arResult, errs []string) {
	t.Helper()
	requirePythonAuthres(t)
	in, _ := json.Marshal(values)
	cmd := exec.Command(python, "-c", pyParse)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3-authres: %v\n%s", err, stderr.String())
	}
	var parsed []struct {
		Error   string
		ID      string
		Results []struct {
			Method, Result string
			Reason         *string
			Props          [][2]string
		}
	}
	if err := json.Unmarshal(out, &parsed); err != nil {
		t.Fatalf("python3-authres output: %v\n%s", err, out)
	}
	for i, p := range parsed {
		errs = append(errs, p.Error)
		var rs []arResult
		for _, r := range p.Results {
			ar := arResult{Method: r.Method, Result: r.Result, Props: map[string]string{}}
			if r.Reason != nil {
				ar.Props["reason"] = unquotePairs(*r.Reason)
			}
			for _, kv := range r.Props {
				if _, dup := ar.Props[kv[0]]; dup {
					t.Errorf("python3-authres: property %s twice in %q", kv[0], values[i])
				}
				ar.Props[kv[0]] = unquotePairs(kv[1])
			}
			rs = append(rs, ar)
		}
		ids, results = append(ids, p.ID), append(results, rs)
	}
	return ids, results, errs
}

// parseMsgauth parses a value with go-msgauth's authres.Parse, which keeps
// a quoted value's quotes and quoted-pairs; they are undone here.
func parseMsgauth(t *testing.T, value string) (string, []arResult) {
	t.Helper()
	id, rs, err := authres.Parse(value)
	if err != nil {
		t.Fatalf("go-msgauth cannot parse %q: %v", value, err)
	}
	var out []arResult
	for _, r := range rs {
		var ar arResult
		props := map[string]string{}
		switch r := r.(type) {
		case *authres.SPFResult:
			ar = arResult{Method: "spf", Result: string(r.Value)}
			props["reason"], props["smtp.mailfrom"], props["smtp.helo"] = r.Reason, r.From, r.Helo
		case *authres.DKIMResult:
			ar = arResult{Method: "dkim", Result: string(r.Value)}
			props["reason"], props["header.d"], props["header.i"] = r.Reason, r.Domain, r.Identifier
		case *authres.DMARCResult:
			ar = arResult{Method: "dmarc", Result: string(r.Value)}
			props["reason"], props["header.from"] = r.Reason, r.From
		case *authres.GenericResult:
			ar = arResult{Method: r.Method, Result: string(r.Value)}
			props = r.Params
		default:
			t.Fatalf("go-msgauth reads a %T result in %q, which mxguard never writes", r, value)
		}
		ar.Props = map[string]string{}
		for k, v := range props {
			if v == "" {
				continue
			}
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = unquotePairs(v[1 : len(v)-1])
			}
			ar.Props[k] = v
		}
		out = append(out, ar)
	}
	return id, out
}

// unquotePairs undoes the quoted-pairs of a quoted-string's content.
func unquotePairs(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// headerFields returns the fields of a message's header section, each
// with its continuation lines and final CRLF.
func headerFields(msg string) []string {
	head, _, _ := strings.Cut(msg, "\r\n\r\n")
	var out []string
	for _, line := range strings.SplitAfter(head+"\r\n", "\r\n") {
		if line == "" {
			continue
		}
		if len(out) > 0 && (line[0] == ' ' || line[0] == '\t') {
			out[len(out)-1] += line
			continue
		}
		out = append(out, line)
	}
	return out
}

// authResultsFields returns a message's Authentication-Results fields,
// however the name is spelt.
func authResultsFields(msg string) []string {
	var out []string
	for _, f := range headerFields(msg) {
		name, _, ok := strings.Cut(f, ":")
		if ok && strings.EqualFold(strings.TrimSpace(name), "Authentication-Results") {
			out = append(out, f)
		}
	}
	return out
}

// unfoldValue returns a field's value, unfolded (RFC 5322 §2.2.3).
func unfoldValue(field string) string {
	_, v, _ := strings.Cut(field, ":")
	return strings.TrimSpace(strings.ReplaceAll(v, "\r\n", ""))
}
