package main

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestMetricsEndpoint(t *testing.T) {
	h := &authHarness{}
	addr := freePort(t)
	dir := t.TempDir()
	_, listen := startMxguard(t, `
hostname: mx.example.org
listen:
  - address: LISTEN
backend:
  address: "builtin:`+filepath.Join(dir, "mail")+`"
domains: [example.org]
metrics:
  address: `+addr+`
`)
	h.listen = listen
	h.send(t, "alice@sender.test", "From: alice@sender.test\r\nSubject: m\r\n\r\nbody\r\n", "250 2.0.0 Ok: queued")
	h.send(t, "alice@sender.test", "From: alice@sender.test\r\n\r\nbare\nLF\r\n", "554 5.6.0")
	if code, body := get(t, "http://"+addr+"/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz: %d %q", code, body)
	}
	if code, body := get(t, "http://"+addr+"/readyz"); code != 200 || body != "ready\n" {
		t.Fatalf("/readyz: %d %q", code, body)
	}
	_, body := get(t, "http://"+addr+"/metrics")
	for _, want := range []string{
		`mxguard_transactions_total{action="accept"} 1`,
		`mxguard_transactions_total{action="reject"} 1`,
		`mxguard_rule_matches_total{mode="enforce",rule="bare-line-endings"} 1`,
		`mxguard_check_results_total{check="spf",result="pass"} 2`,
		`mxguard_check_duration_seconds_count{check="dmarc"}`,
		`mxguard_backend_delivery_seconds_count 1`,
		`mxguard_dns_cache_hits_total`,
		`mxguard_connections_open 0`,
		`mxguard_spool_memory_bytes 0`,
		`mxguard_spool_memory_budget_bytes 2.68435456e+08`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", body)
	}
	// Profiles are opt-in: without metrics.pprof they are not served.
	if code, _ := get(t, "http://"+addr+"/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("/debug/pprof/ without metrics.pprof: %d, want 404", code)
	}
}

func TestMetricsPprof(t *testing.T) {
	addr := freePort(t)
	startMxguard(t, `
hostname: mx.example.org
listen:
  - address: LISTEN
backend:
  address: "builtin:`+filepath.Join(t.TempDir(), "mail")+`"
domains: [example.org]
metrics:
  address: `+addr+`
  pprof: true
`)
	// The port accepts connections once it is bound, a moment before
	// the goroutine serving it has started: look until it shows.
	var code int
	var body string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if code, body = get(t, "http://"+addr+"/debug/pprof/goroutine?debug=1"); code == 200 && strings.Contains(body, "mxguard/proxy.(*Server).Serve") {
			return
		}
	}
	t.Fatalf("/debug/pprof/goroutine: %d, want 200 with the listener's goroutine:\n%.2000s", code, body)
}
