package main

import (
	"bytes"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"mxguard/internal/testcert"
)

// consoleUsers writes a users file with admin / password through
// mxguard console adduser, the password on standard input.
func consoleUsers(t *testing.T, password string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "console-users")
	cmd := exec.Command(binary, "console", "adduser", "--users", path, "admin")
	cmd.Stdin = strings.NewReader(password + "\n")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("console adduser: %v\n%s", err, out.String())
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("users file: %v, mode %v; want 0600", err, fi.Mode())
	}
	return path
}

// consoleWithRefusal runs mxguard serve with its console (account admin,
// "correct horse battery") and the verdict log, has a message from sender
// refused as relaying, waits for its verdict line, and returns the
// console's base URL and the session id the refusal carried.
func consoleWithRefusal(t *testing.T, sender string) (base, session string) {
	t.Helper()
	vlog := filepath.Join(t.TempDir(), "verdicts.jsonl")
	users := consoleUsers(t, "correct horse battery")
	consoleAddr := freePort(t)
	listen, _ := sinkMxguard(t, "verdict_log: "+vlog+"\nconsole:\n  address: "+consoleAddr+"\n  users_file: "+users+"\n")
	c := dialConv(t, "", listen)
	c.say("", "220 ")
	c.say("EHLO client.sender.test", "250 ")
	c.say("MAIL FROM:<"+sender+">", "250 ")
	refusal := c.say("RCPT TO:<victim@elsewhere.test>", "550 5.7.1")
	m := regexp.MustCompile(`session ([A-Za-z0-9]+)`).FindStringSubmatch(refusal)
	if m == nil {
		t.Fatalf("no session id in %q", refusal)
	}
	c.say("QUIT", "221 ")
	waitVerdicts(t, vlog, 1)
	return "http://" + consoleAddr, m[1]
}

var consoleCSRF = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// consoleLogin logs a fresh client into the console at base as admin.
func consoleLogin(t *testing.T, base, password string) *http.Client {
	t.Helper()
	return consoleLoginAs(t, base, "admin", password)
}

// consoleLoginAs logs a fresh client into the console at base as user.
func consoleLoginAs(t *testing.T, base, user, password string) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	_, page := consoleGet(t, c, base+"/login")
	m := consoleCSRF.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("login page without a CSRF field:\n%s", page)
	}
	resp, err := c.PostForm(base+"/login", url.Values{"csrf": {m[1]}, "user": {user}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/verdicts" {
		t.Fatalf("login: %d at %s", resp.StatusCode, resp.Request.URL.Path)
	}
	return c
}

func consoleGet(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestConsoleFindsARefusalBySession: a message refused through serve is
// found in the console by the session id its reply carries, and its page
// says why; what the client sent is shown as text, never as markup.
func TestConsoleFindsARefusalBySession(t *testing.T) {
	// A quoted local part may hold any printable character (RFC 5321
	// §4.1.2): markup in the one field every page shows.
	base, session := consoleWithRefusal(t, `"<script>alert(1)</script>"@sender.test`)

	hc := consoleLogin(t, base, "correct horse battery")
	var resp *http.Response
	var page string
	deadline := time.Now().Add(10 * time.Second)
	for {
		// The index reads the log every second.
		resp, page = consoleGet(t, hc, base+"/verdicts?session="+session)
		if strings.HasPrefix(resp.Request.URL.Path, "/tx/") || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if resp.Request.URL.Path != "/tx/"+session {
		t.Fatalf("searching the session id landed on %s, want /tx/%s", resp.Request.URL.Path, session)
	}
	for _, want := range []string{"reject", "relay", "victim@elsewhere.test", "550 5.7.1"} {
		if !strings.Contains(page, want) {
			t.Errorf("the transaction page lacks %q", want)
		}
	}
	if strings.Contains(page, "<script>alert") {
		t.Error("the client's sender came out as markup")
	}
	if !strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Error("the client's sender is not shown (escaped)")
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	if resp, _ := consoleGet(t, hc, base+"/charts"); resp.StatusCode != 200 {
		t.Errorf("charts: %d", resp.StatusCode)
	}
}

// TestConsoleConfigErrors: a console without the verdict log, or on a
// public address without TLS, is a configuration error; a users file that
// does not parse stops serve with its file and line.
func TestConsoleConfigErrors(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users")
	os.WriteFile(users, []byte("admin:not-a-hash\n"), 0o600)
	base := "hostname: mx.example.org\nlisten:\n  - address: 127.0.0.1:" + strings.Split(freePort(t), ":")[1] + "\nbackend:\n  address: builtin:" + dir + "\ndomains: [example.org]\n"
	for name, c := range map[string]struct{ cfg, want string }{
		"no verdict log": {base + "console:\n  address: 127.0.0.1:8025\n  users_file: " + users + "\n", "set verdict_log to a file"},
		"public no tls":  {base + "verdict_log: " + dir + "/v.jsonl\nconsole:\n  address: 0.0.0.0:8025\n  users_file: " + users + "\n", "needs console.tls"},
		"bad users file": {base + "verdict_log: " + dir + "/v.jsonl\nconsole:\n  address: " + freePort(t) + "\n  users_file: " + users + "\n", users + ":1:7: expected an argon2id hash"},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "mxguard.yaml")
			os.WriteFile(path, []byte(c.cfg), 0o600)
			code, _, stderr := runBinary(t, "serve", "--config", path)
			if code != exitUsage || !strings.Contains(stderr, c.want) {
				t.Fatalf("exit %d, stderr:\n%s\nwant exit 2 and %q", code, stderr, c.want)
			}
		})
	}
}

// TestConsoleOverTLS: with console.tls the console speaks HTTPS only, and
// its session cookie is Secure and __Host- prefixed, so no plain-HTTP
// page of the host can read or plant it.
func TestConsoleOverTLS(t *testing.T) {
	dir := t.TempDir()
	vlog := filepath.Join(dir, "verdicts.jsonl")
	users := consoleUsers(t, "correct horse battery")
	cert := testcert.New(t, "127.0.0.1", "console.test")
	consoleAddr := freePort(t)
	sinkMxguard(t, "verdict_log: "+vlog+"\nconsole:\n  address: "+consoleAddr+"\n  users_file: "+users+
		"\n  tls:\n    cert: "+cert.CertFile+"\n    key: "+cert.KeyFile+"\n")

	// Plain HTTP gets no page.
	if resp, err := http.Get("http://" + consoleAddr + "/login"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("the TLS console answered plain HTTP with a page")
		}
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: cert.Pool, ServerName: "console.test"}}}
	base := "https://" + consoleAddr
	_, page := consoleGet(t, c, base+"/login")
	tok := consoleCSRF.FindStringSubmatch(page)
	if tok == nil {
		t.Fatalf("no login form over TLS:\n%s", page)
	}
	// The login answer itself, to read its Set-Cookie.
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.PostForm(base+"/login", url.Values{"csrf": {tok[1]}, "user": {"admin"}, "password": {"correct horse battery"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	set := resp.Header.Get("Set-Cookie")
	for _, want := range []string{"__Host-mxguard=", "Secure", "HttpOnly", "SameSite=Strict", "Path=/"} {
		if !strings.Contains(set, want) {
			t.Errorf("session cookie %q lacks %s", set, want)
		}
	}
	if hsts := resp.Header.Get("Strict-Transport-Security"); hsts == "" {
		t.Error("no Strict-Transport-Security over TLS")
	}
}

// TestConsoleUsersReload: an account added with mxguard console adduser
// logs in after a SIGHUP, without a restart; a users file broken meanwhile
// keeps the accounts as they were.
func TestConsoleUsersReload(t *testing.T) {
	dir := t.TempDir()
	users := consoleUsers(t, "first password")
	consoleAddr := freePort(t)
	cfg := "hostname: mx.example.org\nlisten:\n  - address: LISTEN\nbackend:\n  address: builtin:" + dir +
		"\ndomains: [example.org]\ndns:\n  servers: [DNS]\nverdict_log: " + filepath.Join(dir, "v.jsonl") +
		"\nconsole:\n  address: " + consoleAddr + "\n  users_file: " + users + "\n"
	r := startReloadable(t, cfg)
	base := "http://" + consoleAddr

	cmd := exec.Command(binary, "console", "adduser", "--users", users, "bob")
	cmd.Stdin = strings.NewReader("bobs password\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("adduser bob: %v\n%s", err, out)
	}
	if out := r.reload(cfg); !strings.Contains(out, "users file reloaded") {
		t.Fatalf("the reload did not read the users file:\n%s", out)
	}
	consoleLoginAs(t, base, "bob", "bobs password")

	// A broken file: the accounts stay.
	if err := os.WriteFile(users, []byte("admin:broken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := r.reload(cfg); !strings.Contains(out, "users file not reloaded") {
		t.Fatalf("a broken users file was not reported:\n%s", out)
	}
	consoleLoginAs(t, base, "bob", "bobs password")
}

// TestDemoConsole: mxguard demo --console serves the console with an
// account it prints, and the demonstration's verdicts are there.
func TestDemoConsole(t *testing.T) {
	consoleAddr := freePort(t)
	d := startDaemon(t, binary, "demo", "--listen", freePort(t), "--dir", t.TempDir(), "--console", consoleAddr)
	re := regexp.MustCompile(`The web console is at http://(\S+)/ \(user demo, password (\S+)\)`)
	var m []string
	for deadline := time.Now().Add(30 * time.Second); m == nil; {
		m = re.FindStringSubmatch(d.out.String())
		if time.Now().After(deadline) {
			t.Fatalf("the demo did not print the console's login:\n%s", d.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if m[1] != consoleAddr {
		t.Fatalf("console at %s, asked for %s", m[1], consoleAddr)
	}
	base := "http://" + consoleAddr
	hc := consoleLoginAs(t, base, "demo", m[2])
	deadline := time.Now().Add(15 * time.Second)
	for {
		// The index reads the log every second.
		_, page := consoleGet(t, hc, base+"/verdicts?action=reject")
		if strings.Contains(page, "DMARC policy") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the demo's DMARC refusal is not in the console:\n%s", page)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
