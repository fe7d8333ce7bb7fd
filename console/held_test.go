package console

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"mxguard/held"
)

// testHeld is a real held-mail store whose releases go to deliver, which
// stands for the backend and records what it got.
type testHeld struct {
	*held.Store
	mu        sync.Mutex
	delivered []string
	by        []string
	// unknown makes the next delivery lose the backend's reply.
	unknown bool
}

func (h *testHeld) Release(ctx context.Context, id, by string, force bool) (held.Meta, error) {
	return h.Store.Release(ctx, id, by, force, func(_ context.Context, m held.Meta, r io.Reader) held.Result {
		b, err := io.ReadAll(r)
		if err != nil {
			return held.Result{Reply: err.Error()}
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		h.delivered = append(h.delivered, string(b))
		h.by = append(h.by, by)
		if h.unknown {
			h.unknown = false
			return held.Result{Unknown: true, Reply: "connection reset by peer"}
		}
		return held.Result{Delivered: true, Reply: "250 2.0.0 Ok: queued as TESTQ"}
	})
}

func (h *testHeld) Delete(id, by string) (held.Meta, error) { return h.Store.Delete(id) }

func (h *testHeld) deliveries() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.delivered...)
}

// hostileMessage is a held message whose every header and part name the
// client chose: markup in the Subject, in a file name, and an HTML part
// with script.
const hostileMessage = "From: \"<img src=x onerror=alert(1)>\" <a@held.test>\r\n" +
	"To: u@example.org\r\n" +
	"Subject: <script>alert(2)</script>\r\n" +
	"Message-ID: <m1@held.test>\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: multipart/mixed; boundary=b1\r\n" +
	"\r\n" +
	"--b1\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"\r\n" +
	"plain words </pre><script>alert(3)</script>\r\n" +
	"--b1\r\n" +
	"Content-Type: text/html\r\n" +
	"\r\n" +
	"<html><body><b id=htmlpart>bold</b><script>alert(4)</script></body></html>\r\n" +
	"--b1\r\n" +
	"Content-Type: application/pdf; name=\"x.pdf\"\r\n" +
	"Content-Disposition: attachment; filename=\"<svg onload=alert(5)>.pdf\"\r\n" +
	"\r\n" +
	"%PDF-1.4 not much\r\n" +
	"--b1--\r\n"

// heldConsole serves a console over a real held store holding the
// hostile message, and returns its id.
func heldConsole(t *testing.T) (*httptest.Server, *testHeld, string) {
	t.Helper()
	st, err := held.Open(held.Options{Dir: t.TempDir(), Keep: 24 * time.Hour, MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	m, err := st.Hold(held.Meta{Session: "HOSTILE1", Tx: "HOSTILE1.1", MailFrom: "a@held.test", Rcpts: []string{"u@example.org"},
		MessageID: "<m1@held.test>", Size: int64(len(hostileMessage)), Client: held.Client{IP: "192.0.2.66", HELO: "<b>helo</b>"},
		Verdict: held.Verdict{Rule: "hold-suspect", Score: 3}}, func(w io.Writer) error {
		_, err := io.WriteString(w, hostileMessage)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	h := &testHeld{Store: st}
	srv, _ := testConsoleWith(t, func(o *Options) { o.Held = h }, hostile)
	return srv, h, m.ID
}

// loggedIn returns a client logged into srv and its CSRF token.
func loggedIn(t *testing.T, srv *httptest.Server) (*http.Client, string) {
	t.Helper()
	c := client(t)
	if code, page := login(t, c, srv.URL, "correct horse"); code != http.StatusOK {
		t.Fatalf("login: %d\n%s", code, page)
	}
	_, page := get(t, c, srv.URL+"/held")
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token in /held:\n%s", page)
	}
	return c, m[1]
}

// TestConsoleHeldPagesEscape: the held list and a held message's page
// show what the client sent (Subject, From, file names, the text) as text
// only: no element of theirs reaches the page, the HTML part is listed
// and never shown, and the page links the verdict that held it.
func TestConsoleHeldPagesEscape(t *testing.T) {
	srv, _, id := heldConsole(t)
	c, _ := loggedIn(t, srv)
	code, page := get(t, c, srv.URL+"/held")
	if code != http.StatusOK || !strings.Contains(page, `href="/held/`+id+`"`) || !strings.Contains(page, "hold-suspect") {
		t.Fatalf("/held: %d, want a link to %s:\n%s", code, id, page)
	}
	code, page = get(t, c, srv.URL+"/held/"+id)
	if code != http.StatusOK {
		t.Fatalf("/held/%s: %d\n%s", id, code, page)
	}
	for _, want := range []string{
		"Subject: &lt;script&gt;alert(2)&lt;/script&gt;",
		"&lt;img src=x onerror=alert(1)&gt;",
		"&lt;svg onload=alert(5)&gt;.pdf",
		"plain words &lt;/pre&gt;&lt;script&gt;alert(3)&lt;/script&gt;",
		"text/html", "application/pdf",
		`href="/tx/HOSTILE1"`,
		"&lt;b&gt;helo&lt;/b&gt;",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page does not show %q", want)
		}
	}
	for _, bad := range []string{"<script>alert", "<img src=x", "<svg onload", "<b>helo", "htmlpart", "alert(4)"} {
		if strings.Contains(page, bad) {
			t.Errorf("the page carries %q from the message", bad)
		}
	}
	if t.Failed() {
		t.Log(page)
	}
}

// TestConsoleHeldRelease: a release needs the session's CSRF token (none,
// or a forged one, is refused and delivers nothing); with it the message
// goes to the backend once, on behalf of console:USER, and the page says
// what the backend answered; a second release sends nothing.
func TestConsoleHeldRelease(t *testing.T) {
	srv, h, id := heldConsole(t)
	c, tok := loggedIn(t, srv)
	u := srv.URL + "/held/" + id + "/release"
	for name, form := range map[string]url.Values{"no token": {}, "forged token": {"csrf": {"forged" + tok[6:]}}} {
		if code, page := post(t, c, u, form); code != http.StatusForbidden || !strings.Contains(page, "CSRF") {
			t.Errorf("%s: %d %q, want 403 naming the CSRF token", name, code, page)
		}
	}
	if n := len(h.deliveries()); n != 0 {
		t.Fatalf("%d deliveries after refused requests, want 0", n)
	}
	code, page := post(t, c, u, url.Values{"csrf": {tok}})
	if code != http.StatusOK || !strings.Contains(page, "Released: the backend took the message.") || !strings.Contains(page, "250 2.0.0 Ok: queued as TESTQ") {
		t.Fatalf("release: %d\n%s", code, page)
	}
	if d := h.deliveries(); len(d) != 1 || d[0] != hostileMessage || h.by[0] != "console:admin" {
		t.Fatalf("deliveries %d by %v, want the message once by console:admin", len(d), h.by)
	}
	m, _ := h.Get(id)
	if m.State != held.StateReleased {
		t.Errorf("state %q, want released", m.State)
	}
	code, page = post(t, c, u, url.Values{"csrf": {tok}})
	if code != http.StatusConflict || !strings.Contains(page, "released already") || len(h.deliveries()) != 1 {
		t.Fatalf("second release: %d, %d deliveries\n%s", code, len(h.deliveries()), page)
	}
}

// TestConsoleHeldPossiblyDelivered: after a release whose reply was lost
// the page says "possibly delivered" and offers "release again"; without
// it the release is refused, with it the message goes again.
func TestConsoleHeldPossiblyDelivered(t *testing.T) {
	srv, h, id := heldConsole(t)
	c, tok := loggedIn(t, srv)
	u := srv.URL + "/held/" + id + "/release"
	h.unknown = true
	code, page := post(t, c, u, url.Values{"csrf": {tok}})
	if code != http.StatusOK || !strings.Contains(page, "possibly delivered") {
		t.Fatalf("release with its reply lost: %d\n%s", code, page)
	}
	_, page = get(t, c, srv.URL+"/held/"+id)
	if !strings.Contains(page, `name="force" value="1"`) || !strings.Contains(page, "possibly delivered") {
		t.Fatalf("the page of a message possibly delivered has no release-again box:\n%s", page)
	}
	code, page = post(t, c, u, url.Values{"csrf": {tok}})
	if code != http.StatusConflict || !strings.Contains(page, "release again") || len(h.deliveries()) != 1 {
		t.Fatalf("release without force: %d, %d deliveries\n%s", code, len(h.deliveries()), page)
	}
	code, page = post(t, c, u, url.Values{"csrf": {tok}, "force": {"1"}})
	if code != http.StatusOK || !strings.Contains(page, "Released") || len(h.deliveries()) != 2 {
		t.Fatalf("forced release: %d, %d deliveries\n%s", code, len(h.deliveries()), page)
	}
}

// TestConsoleHeldDelete: a deletion needs the token, and then removes
// the message.
func TestConsoleHeldDelete(t *testing.T) {
	srv, h, id := heldConsole(t)
	c, tok := loggedIn(t, srv)
	u := srv.URL + "/held/" + id + "/delete"
	if code, _ := post(t, c, u, url.Values{"csrf": {"nope"}}); code != http.StatusForbidden {
		t.Fatalf("delete with a forged token: %d, want 403", code)
	}
	if _, err := h.Get(id); err != nil {
		t.Fatalf("the message went on a forged request: %v", err)
	}
	code, page := post(t, c, u, url.Values{"csrf": {tok}})
	if code != http.StatusOK || !strings.Contains(page, "Deleted.") {
		t.Fatalf("delete: %d\n%s", code, page)
	}
	if list, _ := h.List(held.Filter{}); len(list) != 0 {
		t.Fatalf("%d held messages after the deletion, want 0", len(list))
	}
	if code, _ := get(t, c, srv.URL+"/held/"+id); code != http.StatusNotFound {
		t.Fatalf("the page of a deleted message: %d, want 404", code)
	}
}

// TestConsoleHeldRefusesPaths: an id that is not of the store's form (a
// path out of hold.dir) is refused before it comes near a file name, on
// every held route.
func TestConsoleHeldRefusesPaths(t *testing.T) {
	srv, h, _ := heldConsole(t)
	c, tok := loggedIn(t, srv)
	for _, id := range []string{"..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "AAAAAAAAAAAAAAAA", "aaaaaaaaaaaaaaa1"} {
		if code, page := get(t, c, srv.URL+"/held/"+id); code != http.StatusNotFound || strings.Contains(page, "root:") {
			t.Errorf("GET /held/%s: %d, want 404", id, code)
		}
		for _, op := range []string{"release", "delete"} {
			code, page := post(t, c, srv.URL+"/held/"+id+"/"+op, url.Values{"csrf": {tok}})
			if code != http.StatusNotFound || !strings.Contains(page, "No held message has this id") {
				t.Errorf("POST /held/%s/%s: %d %s, want 404", id, op, code, page)
			}
		}
	}
	if len(h.deliveries()) != 0 {
		t.Fatal("a bad id delivered something")
	}
}

// TestConsoleHeldFilters: the list's GET form filters by the fields of
// held.Filter, and a bad value is named.
func TestConsoleHeldFilters(t *testing.T) {
	srv, _, id := heldConsole(t)
	c, _ := loggedIn(t, srv)
	for q, want := range map[string]bool{
		"rule=hold-suspect": true, "rule=other": false, "from=held.test": true, "from=else": false,
		"state=held": true, "state=released": false, "session=HOSTILE1": true, "rcpt=u@": true,
	} {
		code, page := get(t, c, srv.URL+"/held?"+q)
		if code != http.StatusOK || strings.Contains(page, "/held/"+id) != want {
			t.Errorf("/held?%s: %d, listed %v, want %v", q, code, !want, want)
		}
	}
	for _, q := range []string{"since=yesterday-ish", "state=" + url.QueryEscape("<b>")} {
		code, page := get(t, c, srv.URL+"/held?"+q)
		if code != http.StatusBadRequest || strings.Contains(page, "<b>") {
			t.Errorf("/held?%s: %d, want 400 with the value escaped", q, code)
		}
	}
}
