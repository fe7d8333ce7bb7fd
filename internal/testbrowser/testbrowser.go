// Package testbrowser runs one real headless Chromium (Debian's chromium
// package) for the tests of a package, driven through the DevTools
// protocol with chromedp, so that the console is tested in the browser its
// admins use: its HTML parsed, its Content-Security-Policy enforced, its
// cookies kept as a browser keeps them.
package testbrowser

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
)

// Path is where Debian's chromium package puts the browser.
const Path = "/usr/bin/chromium"

var shared struct {
	once   sync.Once
	ctx    context.Context
	cancel context.CancelFunc
	dir    string
	err    error
}

// start launches the browser: headless, with a profile in a temporary
// folder, no sandbox (the tests run as root, which Chromium's sandbox
// refuses), no network service beyond what a page asks of loopback.
func start() {
	if _, err := exec.LookPath(Path); err != nil {
		shared.err = fmt.Errorf("testbrowser: %s not found (apt-get install chromium): %w", Path, err)
		return
	}
	dir, err := os.MkdirTemp("", "mxguard-chromium-")
	if err != nil {
		shared.err = err
		return
	}
	shared.dir = dir
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(Path),
		chromedp.UserDataDir(dir),
		chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		// Nothing but loopback: no component updates, no safe browsing.
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-features", "Translate,OptimizationHints,MediaRouter"),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	// The first Run starts the browser.
	if err := chromedp.Do(bctx); err != nil {
		cancelBrowser()
		cancelAlloc()
		shared.err = fmt.Errorf("testbrowser: starting %s: %w", Path, err)
		return
	}
	shared.ctx = bctx
	shared.cancel = func() { cancelBrowser(); cancelAlloc() }
}

// Tab returns a new tab (its own cookies: an incognito-like browser
// context) of the shared browser, closed when t ends. The browser starts
// on first use; a browser that cannot start fails the test.
func Tab(t testing.TB) context.Context {
	t.Helper()
	shared.once.Do(start)
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	ctx, cancel := chromedp.NewContext(shared.ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("testbrowser: new tab: %v", err)
	}
	return ctx
}

// StopShared stops the browser, if it was started. Call it from TestMain
// after m.Run.
func StopShared() {
	if shared.cancel != nil {
		shared.cancel()
	}
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
}
