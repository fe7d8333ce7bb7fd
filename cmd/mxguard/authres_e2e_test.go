package main

import (
	"strings"
	"testing"
)

// A sender may put Authentication-Results fields that claim to come from
// us into its message; every spelling of our authserv-id that a reader
// could take for ours must be gone when the message reaches the backend,
// and fields of other authserv-ids must arrive as they were.
func TestForgedAuthResultsRemovedInEverySpelling(t *testing.T) {
	h := startAuth(t)
	forged := []struct{ name, field string }{
		{"plain", "Authentication-Results: mx.example.org; dkim=pass header.d=f-plain.test\r\n"},
		{"quoted", "Authentication-Results: \"mx.example.org\"; dkim=pass header.d=f-quoted.test\r\n"},
		{"quoted-pair", "Authentication-Results: \"mx.ex\\ample.org\"; dkim=pass header.d=f-quoted-pair.test\r\n"},
		{"quoted-case-dot", "Authentication-Results: \"MX.Example.ORG.\"; dkim=pass header.d=f-quoted-case-dot.test\r\n"},
		{"quoted-blanks", "Authentication-Results: \" mx.example.org \"; dkim=pass header.d=f-quoted-blanks.test\r\n"},
		{"comment-semicolon", "Authentication-Results: (a;b) mx.example.org; dkim=pass header.d=f-comment-semicolon.test\r\n"},
		{"comment-escaped-paren", "Authentication-Results: (a\\) ; b) mx.example.org; dkim=pass header.d=f-comment-escaped-paren.test\r\n"},
		{"comment-nested", "Authentication-Results: ((;) x) MX.Example.Org. (y) 1 ; dkim=pass header.d=f-comment-nested.test\r\n"},
		{"comment-after", "Authentication-Results: mx.example.org(x); dkim=pass header.d=f-comment-after.test\r\n"},
		{"upper-case", "Authentication-Results: MX.EXAMPLE.ORG; dkim=pass header.d=f-upper-case.test\r\n"},
		{"trailing-dot", "Authentication-Results: mx.example.org.; dkim=pass header.d=f-trailing-dot.test\r\n"},
		{"version", "Authentication-Results: mx.example.org 1; dkim=pass header.d=f-version.test\r\n"},
		{"no-result", "Authentication-Results: mx.example.org; none\r\n"},
		{"space-before-colon", "Authentication-Results : mx.example.org; dkim=pass header.d=f-space-before-colon.test\r\n"},
		{"tab-before-colon", "Authentication-Results\t: mx.example.org; dkim=pass header.d=f-tab-before-colon.test\r\n"},
		{"lower-case-name", "authentication-results: mx.example.org; dkim=pass header.d=f-lower-case-name.test\r\n"},
		{"no-blank", "Authentication-Results:mx.example.org;dkim=pass header.d=f-no-blank.test\r\n"},
		{"tabs", "Authentication-Results:\tmx.example.org\t;\tdkim=pass header.d=f-tabs.test\r\n"},
		{"folded", "Authentication-Results:\r\n\tmx.example.org\r\n ; dkim=pass header.d=f-folded.test\r\n"},
		{"folded-in-comment", "Authentication-Results: (a\r\n ;b) mx.example.org; dkim=pass header.d=f-folded-in-comment.test\r\n"},
		{"encoded-word", "Authentication-Results: =?us-ascii?q?mx.example.org?=; dkim=pass header.d=f-encoded-word.test\r\n"},
		{"encoded-value", "Authentication-Results: =?utf-8?b?bXguZXhhbXBsZS5vcmc7IGRraW09cGFzcyBoZWFkZXIuZD1mb3JnZWQtZW5jb2RlZC1hbGwudGVzdA==?=\r\n"},
	}
	kept := []string{
		"Authentication-Results: other.example; dkim=pass header.d=k-other.test\r\n",
		"Authentication-Results: mx.example.org.evil.test; dkim=pass header.d=k-suffix.test\r\n",
		"Authentication-Results: x.mx.example.org; dkim=pass header.d=k-sub.test\r\n",
		"Authentication-Results: \"other.example\" (mx.example.org); dkim=pass header.d=k-comment-after.test\r\n",
		"Authentication-Results: (mx.example.org) other.example; dkim=pass header.d=k-comment-before.test\r\n",
	}
	var body strings.Builder
	for i, f := range forged {
		body.WriteString(f.field)
		if i == len(forged)/2 {
			for _, k := range kept {
				body.WriteString(k)
			}
		}
	}
	body.WriteString("From: alice@sender.test\r\nTo: user@example.org\r\nSubject: forged\r\n" +
		"Date: Mon, 2 Nov 2026 10:00:00 +0000\r\nMessage-ID: <forged@sender.test>\r\n\r\n" +
		"Authentication-Results: mx.example.org; in the body it stays\r\n")
	h.send(t, "alice@sender.test", body.String(), "250 2.0.0 Ok: queued")
	got := h.stored(t)
	if len(got) != 1 {
		t.Fatalf("backend holds %d messages", len(got))
	}
	msg := got[0]
	head, _, _ := strings.Cut(msg, "\r\n\r\n")
	for _, f := range forged {
		if strings.Contains(head+"\r\n", f.field) {
			t.Errorf("forged field (%s) reached the backend: %q", f.name, f.field)
		}
	}
	for _, k := range kept {
		if !strings.Contains(head+"\r\n", k) {
			t.Errorf("field of another authserv-id was removed: %q", k)
		}
	}
	fields := authResultsFields(msg)
	if len(fields) != 1+len(kept) {
		t.Errorf("backend got %d Authentication-Results fields, want ours and the %d kept:\n%s", len(fields), len(kept), strings.Join(fields, ""))
	}
	if len(fields) == 0 || !strings.HasPrefix(fields[0], "Authentication-Results: mx.example.org;\r\n\tspf=pass ") {
		t.Errorf("our own field is not the first one:\n%s", strings.Join(fields, ""))
	}
	if !strings.Contains(msg, "\r\n\r\nAuthentication-Results: mx.example.org; in the body it stays\r\n") {
		t.Errorf("the body changed:\n%s", msg)
	}
	parsedAsOurs(t, fields, len(kept))
}

// parsedAsOurs reads the delivered Authentication-Results fields as a
// real RFC 8601 parser (python3-authres) does: the first is ours, with our
// results only (SPF, DKIM, DMARC); no other field has our authserv-id, in
// any spelling a reader could take for ours; the kept fields are the
// others, each with its one result; and no forged result (header.d=f-…)
// is left anywhere. python3-authres refuses a quoted authserv-id, which
// RFC 8601 §2.2 allows: such a field is counted with the others, since
// this reader cannot take it for ours, but ours must parse.
func parsedAsOurs(t *testing.T, fields []string, kept int) {
	t.Helper()
	values := make([]string, len(fields))
	for i, f := range fields {
		values[i] = unfoldValue(f)
	}
	ids, results, errs := parsePythonEach(t, values)
	ours := func(id string) bool {
		return strings.EqualFold(strings.TrimSuffix(strings.TrimSpace(id), "."), "mx.example.org")
	}
	others := 0
	for i, id := range ids {
		if errs[i] != "" {
			if i == 0 || !strings.HasPrefix(values[i], `"`) {
				t.Errorf("python3-authres cannot parse %q: %s", values[i], errs[i])
			}
			others++
			continue
		}
		for _, r := range results[i] {
			if d := r.Props["header.d"]; strings.HasPrefix(d, "f-") || strings.HasPrefix(d, "forged") {
				t.Errorf("python3-authres reads a forged result %s in %q", r, values[i])
			}
		}
		switch {
		case i == 0:
			if !ours(id) {
				t.Errorf("python3-authres reads the first field's authserv-id as %q, want mx.example.org", id)
			}
			var methods []string
			for _, r := range results[i] {
				methods = append(methods, r.Method)
			}
			if got := strings.Join(methods, ","); got != "spf,dkim,dmarc" {
				t.Errorf("python3-authres reads our field's methods as %s, want spf,dkim,dmarc:%s", got, formatResults(results[i]))
			}
		case ours(id):
			t.Errorf("python3-authres reads a second field with our authserv-id %q: %q", id, values[i])
		default:
			others++
			if len(results[i]) != 1 || !strings.HasPrefix(results[i][0].Props["header.d"], "k-") {
				t.Errorf("a kept field of %q reads as%s", id, formatResults(results[i]))
			}
		}
	}
	if others != kept {
		t.Errorf("python3-authres reads %d fields of other authserv-ids, want %d", others, kept)
	}
}
