package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"mxguard/internal/testbrowser"
)

// shot saves a screenshot of the tab's page as NAME.png in the test's
// artifact folder (go test -artifacts keeps them).
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(t.ArtifactDir(), name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// TestConsoleInBrowser drives the console in a real headless Chromium:
// log in, find a refused message by the session id its reply carries,
// read why, see the charts drawn; markup the client sent (in its sender)
// runs nowhere; a forged request from another origin changes nothing.
func TestConsoleInBrowser(t *testing.T) {
	// The payload would retitle the page if it ran, as markup or script.
	base, session := consoleWithRefusal(t, `"<img src=x onerror=document.title='pwned'><script>document.title='pwned'</script>"@sender.test`)

	tab := testbrowser.Tab(t)
	ctx, cancel := context.WithTimeout(tab, 60*time.Second)
	defer cancel()
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	must("login page", chromedp.Do(ctx,
		chromedp.Navigate(base+"/verdicts"),
		chromedp.WaitVisible(chromedp.CSS(`input[name="user"]`)),
	))
	shot(t, ctx, "1-login")
	must("log in", chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`input[name="user"]`), "admin"),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), "correct horse battery"),
		chromedp.Submit(chromedp.CSS(`form.login`)),
		chromedp.WaitVisible(chromedp.CSS(`form.search`)),
	))
	loc, err := chromedp.Run(ctx, chromedp.Location())
	must("location", err)
	if !strings.HasSuffix(loc, "/verdicts") {
		t.Fatalf("after login at %s, want /verdicts", loc)
	}
	// The index reads the log every second: search until the session's
	// page opens.
	deadline := time.Now().Add(15 * time.Second)
	for {
		must("search", chromedp.Do(ctx,
			chromedp.Navigate(base+"/verdicts"),
			chromedp.WaitVisible(chromedp.CSS(`input[name="session"]`)),
			chromedp.SendKeys(chromedp.CSS(`input[name="session"]`), session),
			chromedp.Submit(chromedp.CSS(`form.search`)),
			chromedp.WaitReady(chromedp.CSS(`main h1`)),
		))
		loc, err = chromedp.Run(ctx, chromedp.Location())
		must("location", err)
		if strings.Contains(loc, "/tx/") || time.Now().After(deadline) {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	if !strings.HasSuffix(loc, "/tx/"+session) {
		t.Fatalf("searching %s landed on %s", session, loc)
	}
	must("verdicts", chromedp.Do(ctx,
		chromedp.Navigate(base+"/verdicts"),
		chromedp.WaitVisible(chromedp.CSS(`table.verdicts`)),
	))
	shot(t, ctx, "2-verdicts")
	must("back to the transaction", chromedp.Do(ctx,
		chromedp.Navigate(loc),
		chromedp.WaitVisible(chromedp.CSS(`section.record`)),
	))
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`main`)))
	must("page text", err)
	for _, want := range []string{"reject", "relay", "victim@elsewhere.test", "550 5.7.1", "onerror=document.title"} {
		if !strings.Contains(text, want) {
			t.Errorf("the transaction page does not say %q:\n%s", want, text)
		}
	}
	title, err := chromedp.Run(ctx, chromedp.Title())
	must("title", err)
	if strings.Contains(title, "pwned") {
		t.Fatalf("the client's markup ran: title %q", title)
	}
	// Nothing the client sent became an element.
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('main img, main script').length`))
	must("count elements", err)
	if n != 0 {
		t.Errorf("%d img or script elements in the page, want 0", n)
	}
	shot(t, ctx, "3-transaction")

	must("charts", chromedp.Do(ctx,
		chromedp.Navigate(base+"/charts"),
		chromedp.WaitVisible(chromedp.CSS(`figure.chart svg`)),
	))
	bars, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('figure.chart svg rect.a-reject').length`))
	must("count bars", err)
	if bars == 0 {
		t.Error("no refusal drawn in the charts")
	}
	shot(t, ctx, "4-charts")

	// A page of another origin (another port of the same host: the same
	// site, so SameSite lets the cookie go) posts a logout without the
	// token: refused, and the admin stays logged in.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<form id="f" method="post" action="%s/logout"><input name="csrf" value="guess"></form><script>document.getElementById('f').submit()</script>`, base)
	}))
	defer evil.Close()
	must("forged request", chromedp.Do(ctx,
		chromedp.Navigate(evil.URL),
		chromedp.WaitReady(chromedp.CSS(`body`)),
	))
	time.Sleep(500 * time.Millisecond) // the form posts as the page loads
	body, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`body`)))
	must("forged answer", err)
	if !strings.Contains(body, "refused") && !strings.Contains(body, "CSRF") {
		t.Errorf("the forged logout got %q, want a refusal", body)
	}
	must("still logged in", chromedp.Do(ctx,
		chromedp.Navigate(base+"/verdicts"),
		chromedp.WaitVisible(chromedp.CSS(`form.search`)),
	))
}
