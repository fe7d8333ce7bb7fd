package console

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"

	"mxguard/policy"
)

// testConsole serves a console over loopback HTTP with one user, admin /
// "correct horse", over an index of the verdict log lines given.
func testConsole(t testing.TB, recs ...*policy.Record) (*httptest.Server, *Index) {
	t.Helper()
	return testConsoleWith(t, nil, recs...)
}

// testConsoleWith is testConsole with more options set by with.
func testConsoleWith(t testing.TB, with func(*Options), recs ...*policy.Record) (*httptest.Server, *Index) {
	t.Helper()
	dir := t.TempDir()
	// A cheap hash (1 MiB, one pass): the race detector makes the real
	// parameters cost seconds per login.
	salt := []byte("0123456789abcdef")
	key := argon2.IDKey([]byte("correct horse"), salt, 1, 1024, 1, 32)
	enc := base64.RawStdEncoding
	users := "admin:$argon2id$v=19$m=1024,t=1,p=1$" + enc.EncodeToString(salt) + "$" + enc.EncodeToString(key) + "\n"
	if err := os.WriteFile(filepath.Join(dir, "users"), []byte(users), 0o600); err != nil {
		t.Fatal(err)
	}
	u, err := LoadUsers(filepath.Join(dir, "users"))
	if err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "verdicts.jsonl")
	l, err := policy.OpenVerdictLog(logPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := l.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	o := Options{Users: u}
	if with != nil {
		with(&o)
	}
	// The index has the console's clock: the counts of "the last week"
	// do not depend on the day the test runs.
	x := openIndex(t, IndexOptions{Now: o.Now})
	if err := x.CatchUp(logPath); err != nil {
		t.Fatal(err)
	}
	o.Index = x
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv, x
}

// client is a browser-like client: cookies kept, redirects followed.
func client(t testing.TB) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 10 * time.Second}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func get(t testing.TB, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func post(t testing.TB, c *http.Client, u string, form url.Values) (int, string) {
	t.Helper()
	resp, err := c.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// login logs c in and returns the page it lands on.
func login(t testing.TB, c *http.Client, base, password string) (int, string) {
	t.Helper()
	_, page := get(t, c, base+"/login")
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF field in the login page:\n%s", page)
	}
	return post(t, c, base+"/login", url.Values{"csrf": {m[1]}, "user": {"admin"}, "password": {password}, "next": {"/verdicts"}})
}

// hostile is a verdict whose every field the client chose.
var hostile = &policy.Record{
	Time: time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC), Session: "HOSTILE1", Tx: "HOSTILE1.1",
	ClientIP: "192.0.2.66", ClientPTR: `"><script>alert(1)</script>`, HELO: `<img src=x onerror=alert(2)>`,
	MailFrom: `"<script>alert(3)</script>"@evil.test`, Rcpts: []string{"user@example.org"},
	MessageID: `<x@y></dd><script>alert(4)</script>`, Action: "reject", Stage: "data",
	Reason: "spoof", Reply: "554 5.7.1 refused (session HOSTILE1)",
	Rules:  []policy.RuleMatch{{Name: "spoof", Action: "reject", Mode: "enforce"}},
	Checks: map[string]policy.CheckRecord{"dmarc": {Result: "fail", Detail: `From: <svg onload=alert(5)>`, DurationMS: 1.5}},
}

// TestConsoleLogin: pages need a login; a wrong password is refused and
// counted, and after five failures even the right one is refused; the
// session cookie is HttpOnly and SameSite=Strict; logout needs the CSRF
// token and ends the session.
func TestConsoleLogin(t *testing.T) {
	srv, _ := testConsole(t, hostile)
	c := client(t)
	if code, page := get(t, c, srv.URL+"/verdicts"); code != 200 || !strings.Contains(page, `action="/login"`) {
		t.Fatalf("not logged in: %d, want the login page", code)
	}
	code, page := login(t, c, srv.URL, "correct horse")
	if code != 200 || !strings.Contains(page, "HOSTILE1") {
		t.Fatalf("after login: %d\n%s", code, page)
	}
	resp, _ := http.Get(srv.URL + "/login")
	resp.Body.Close()
	var sessionCookie string
	u, _ := url.Parse(srv.URL)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == "mxguard" {
			sessionCookie = ck.Value
		}
	}
	if sessionCookie == "" {
		t.Fatal("no session cookie")
	}
	// The Set-Cookie line itself.
	_, loginPage := get(t, client(t), srv.URL+"/login")
	tok := csrfField.FindStringSubmatch(loginPage)[1]
	req, _ := http.NewRequest("POST", srv.URL+"/login", strings.NewReader(url.Values{"csrf": {tok}, "user": {"admin"}, "password": {"correct horse"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: loginCookie, Value: tok})
	r2, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	set := r2.Header.Get("Set-Cookie")
	if !strings.Contains(set, "HttpOnly") || !strings.Contains(set, "SameSite=Strict") {
		t.Errorf("session cookie %q: want HttpOnly and SameSite=Strict", set)
	}
	for _, h := range []string{"Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options"} {
		if r2.Header.Get(h) == "" {
			t.Errorf("no %s header", h)
		}
	}

	// Logout without the token is refused; with it, the session ends.
	if code, _ := post(t, c, srv.URL+"/logout", url.Values{}); code != http.StatusForbidden {
		t.Errorf("logout without CSRF token: %d, want 403", code)
	}
	_, page = get(t, c, srv.URL+"/verdicts")
	tok = csrfField.FindStringSubmatch(page)[1]
	post(t, c, srv.URL+"/logout", url.Values{"csrf": {tok}})
	if _, page := get(t, c, srv.URL+"/verdicts"); !strings.Contains(page, `action="/login"`) {
		t.Error("still logged in after logout")
	}

	// Five wrong passwords, then the right one is refused too.
	bad := client(t)
	for i := range 5 {
		if code, _ := login(t, bad, srv.URL, "wrong"); code != http.StatusUnauthorized {
			t.Fatalf("wrong password %d: %d, want 401", i, code)
		}
	}
	if code, page := login(t, bad, srv.URL, "correct horse"); code != http.StatusTooManyRequests || !strings.Contains(page, "Too many") {
		t.Fatalf("after five failures: %d, want 429", code)
	}
}

// TestConsoleRefusesForgedRequests: a POST from another origin, or
// without the session's CSRF token, changes nothing; a login without the
// login form's token is refused.
func TestConsoleRefusesForgedRequests(t *testing.T) {
	srv, _ := testConsole(t, hostile)
	c := client(t)
	login(t, c, srv.URL, "correct horse")
	req, _ := http.NewRequest("POST", srv.URL+"/logout", strings.NewReader("csrf=x"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.test")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin POST: %d, want 403", resp.StatusCode)
	}
	if code, _ := post(t, c, srv.URL+"/logout", url.Values{"csrf": {"forged"}}); code != http.StatusForbidden {
		t.Errorf("POST with a forged token: %d, want 403", code)
	}
	if _, page := get(t, c, srv.URL+"/verdicts"); !strings.Contains(page, "HOSTILE1") {
		t.Error("the forged logout ended the session")
	}
	if code, _ := post(t, client(t), srv.URL+"/login", url.Values{"user": {"admin"}, "password": {"correct horse"}}); code != http.StatusForbidden {
		t.Errorf("login without the form's token: %d, want 403", code)
	}
}

// TestConsoleEscapesHostileValues: every value the client chose comes out
// as text: no tag it sent survives in a page.
func TestConsoleEscapesHostileValues(t *testing.T) {
	srv, _ := testConsole(t, hostile)
	c := client(t)
	login(t, c, srv.URL, "correct horse")
	for _, path := range []string{"/verdicts", "/tx/HOSTILE1", "/verdicts?session=HOSTILE1.1", "/charts"} {
		code, page := get(t, c, srv.URL+path)
		if code != 200 {
			t.Fatalf("%s: %d\n%s", path, code, page)
		}
		for _, tag := range []string{"<script", "<img", "<svg onload"} {
			if strings.Contains(page, tag) {
				t.Errorf("%s: %q in the page", path, tag)
			}
		}
	}
	_, page := get(t, c, srv.URL+"/tx/HOSTILE1")
	for _, want := range []string{"spoof", "dmarc", "fail", "554 5.7.1 refused", "&lt;script&gt;alert(4)&lt;/script&gt;"} {
		if !strings.Contains(page, want) {
			t.Errorf("transaction page lacks %q", want)
		}
	}
	if code, _ := get(t, c, srv.URL+"/tx/NOSUCH"); code != http.StatusNotFound {
		t.Errorf("unknown session: %d, want 404", code)
	}
}

// TestConsoleOpenRedirect: the login's next page is a path of the
// console, never another site.
func TestConsoleOpenRedirect(t *testing.T) {
	for in, want := range map[string]string{
		"/tx/ABC": "/tx/ABC", "//evil.test/x": "/verdicts", "https://evil.test": "/verdicts",
		`/\evil.test`: "/verdicts", "": "/verdicts",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}
