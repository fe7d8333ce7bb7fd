package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"mxguard/checks/resolver/dnstest"
	"mxguard/internal/state"
	"mxguard/internal/testredis"
)

// seedState writes entries into the embedded store in dir, as a server
// that ran before would have left them.
func seedState(t *testing.T, dir string) {
	t.Helper()
	s, err := state.OpenEmbedded(dir, state.EmbeddedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	grey := func(network, rcpt string) {
		tr := state.Triplet{Network: network, Sender: "a@sender.test", Rcpt: rcpt, Delay: time.Minute, RetryWindow: time.Hour, PassLifetime: time.Hour}
		if err := s.RecordGreylist(ctx, tr, state.Grey{State: state.GreyNew}); err != nil {
			t.Fatal(err)
		}
	}
	grey("192.0.2.0/24", "u@example.org")
	grey("198.51.100.0/24", "u@example.org")
	grey("2001:db8::/64", "u@example.org")
	for _, k := range []string{"rate:c:192.0.2.7", "rate:c:192.0.2.70", "rate:n:192.0.2.0/24", "rate:c:2001:db8::1"} {
		// A bucket lives until its TAT, one interval after the event: an
		// hour, so that none runs out while the test runs on a busy
		// machine (a second's interval did, after two seconds).
		if _, _, err := s.Allow(ctx, []state.Limit{{Key: k, Interval: time.Hour, Window: time.Hour}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestStateCommandThroughServer: with serve running (its store's file
// locked), "mxguard state" lists, shows and deletes through the control
// socket; the deletions are what serve writes back at its stop.
func TestStateCommandThroughServer(t *testing.T) {
	stateDir := filepath.Join(t.TempDir(), "state")
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	seedState(t, stateDir)
	metricsAddr := freePort(t)
	cfg := "hostname: mx.example.org\nlisten:\n  - address: LISTEN\nbackend:\n  address: builtin:" + t.TempDir() +
		"\ndomains: [example.org]\nstate:\n  dir: " + stateDir + "\nmetrics:\n  address: " + metricsAddr + "\n"
	d, _ := startMxguard(t, cfg)
	cfgPath := d.cmd.Args[len(d.cmd.Args)-1]

	if fi, err := os.Stat(filepath.Join(stateDir, "control.sock")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("control socket: %v %v", fi, err)
	}
	// The file is locked: only the socket can answer.
	if _, err := state.OpenEmbedded(stateDir, state.EmbeddedOptions{}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("the store's file is not locked by serve: %v", err)
	}
	code, out, errb := runBinary(t, "state", "list", "--config", cfgPath)
	if code != 0 || strings.Count(out, "\n") != 7 || !strings.Contains(out, "grey:t:192.0.2.0/24|a@sender.test|u@example.org\tsince ") {
		t.Fatalf("list: exit %d\n%s%s", code, out, errb)
	}
	code, out, _ = runBinary(t, "state", "list", "--config", cfgPath, "--client", "192.0.2.7")
	want := []string{"grey:t:192.0.2.0/24|", "rate:c:192.0.2.7\t", "rate:n:192.0.2.0/24\t"}
	if code != 0 || strings.Count(out, "\n") != len(want) {
		t.Fatalf("list --client: exit %d\n%s", code, out)
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("list --client 192.0.2.7 lacks %q:\n%s", w, out)
		}
	}
	if code, out, _ = runBinary(t, "state", "list", "--config", cfgPath, "--client", "2001:db8::5"); code != 0 || !strings.HasPrefix(out, "grey:t:2001:db8::/64|") || strings.Count(out, "\n") != 1 {
		t.Fatalf("list --client 2001:db8::5 (its /64): exit %d\n%s", code, out)
	}
	if code, out, _ = runBinary(t, "state", "show", "rate:c:192.0.2.70", "--config", cfgPath); code != 0 || !strings.HasPrefix(out, "rate:c:192.0.2.70\ttat ") {
		t.Fatalf("show: exit %d\n%s", code, out)
	}
	if code, _, errb = runBinary(t, "state", "show", "--config", cfgPath, "rate:nothing"); code != 1 || !strings.Contains(errb, "no entry") {
		t.Fatalf("show of a missing key: exit %d %s", code, errb)
	}
	code, out, _ = runBinary(t, "state", "delete", "--config", cfgPath, "--client", "192.0.2.7")
	if code != 0 || !strings.HasSuffix(out, "3 entries deleted\n") {
		t.Fatalf("delete --client: exit %d\n%s", code, out)
	}
	if code, out, _ = runBinary(t, "state", "delete", "--config", cfgPath, "rate:c:192.0.2.70"); code != 0 || out != "deleted rate:c:192.0.2.70\n" {
		t.Fatalf("delete KEY: exit %d\n%s", code, out)
	}
	if code, _, _ = runBinary(t, "state", "delete", "--config", cfgPath, "rate:c:192.0.2.70"); code != 1 {
		t.Fatalf("deleting twice: exit %d, want 1", code)
	}
	// The five deletions went through the store's metrics.
	if _, body := get(t, "http://"+metricsAddr+"/metrics"); !strings.Contains(body, `mxguard_state_operation_seconds_count{op="delete",store="embedded"} 5`) {
		t.Errorf("/metrics lacks the store's deletions:\n%s", body)
	}
	d.stop()
	// No server now: the command opens the file, which serve wrote at
	// its stop.
	code, out, errb = runBinary(t, "state", "list", "--config", cfgPath)
	if code != 0 || strings.Count(out, "\n") != 3 || !strings.Contains(out, "198.51.100.0/24") || !strings.Contains(out, "2001:db8::1") {
		t.Fatalf("list after the stop: exit %d\n%s%s", code, out, errb)
	}
	for _, args := range [][]string{{"state"}, {"state", "list", "--config", cfgPath, "extra"}, {"state", "delete", "--config", cfgPath},
		{"state", "list", "--config", cfgPath, "--client", "not-an-ip"}, {"state", "frob"}} {
		if code, _, _ := runBinary(t, args...); code != 2 {
			t.Errorf("mxguard %s: exit %d, want 2", strings.Join(args, " "), code)
		}
	}
}

// TestServeStateDirProblems: a state.dir that cannot be created, or a
// store another mxguard holds, stops serve with exit 2 naming state.dir;
// check never opens the store.
func TestServeStateDirProblems(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	dns := dnstest.StartFiles(t, corpusPath("zones/e2e.zone"))
	base := "hostname: mx.example.org\nlisten:\n  - address: " + freePort(t) + "\nbackend:\n  address: 127.0.0.1:2526\ndomains: [example.org]\ndns:\n  servers: [" + dns.Addr() + "]\n"
	cfg := filepath.Join(dir, "bad.yaml")
	os.WriteFile(cfg, []byte(base+"state:\n  dir: "+filepath.Join(file, "sub")+"\n"), 0o600)
	if code, _, errb := runBinary(t, "serve", "--config", cfg); code != 2 || !strings.Contains(errb, "state.dir") {
		t.Fatalf("state.dir under a file: exit %d\n%s", code, errb)
	}

	held := filepath.Join(dir, "held")
	os.MkdirAll(held, 0o700)
	s, err := state.OpenEmbedded(held, state.EmbeddedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	os.WriteFile(cfg, []byte(base+"state:\n  dir: "+held+"\n"), 0o600)
	if code, _, errb := runBinary(t, "serve", "--config", cfg); code != 2 || !strings.Contains(errb, "state.dir") || !strings.Contains(errb, "in use by another process") {
		t.Fatalf("a store in use: exit %d\n%s", code, errb)
	}

	fresh := filepath.Join(dir, "fresh")
	os.WriteFile(cfg, []byte(base+"state:\n  dir: "+fresh+"\n"), 0o600)
	eml := filepath.Join(dir, "m.eml")
	os.WriteFile(eml, []byte("From: a@sender.test\r\nTo: user@example.org\r\nSubject: hi\r\n\r\nfine\r\n"), 0o600)
	if code, out, errb := runBinary(t, "check", "--config", cfg, "--client-ip", "127.0.0.1", "--helo", "c.sender.test",
		"--mail-from", "a@sender.test", "--rcpt", "user@example.org", eml); code != 0 {
		t.Fatalf("check: exit %d\n%s%s", code, out, errb)
	}
	if _, err := os.Stat(fresh); !os.IsNotExist(err) {
		t.Fatalf("check touched state.dir: %v", err)
	}
}

// TestStateCommandRedis: with state.redis, serve starts on a Redis that
// wants a password (from password_file), and "mxguard state" talks to
// Redis itself, under the key prefix, while serve runs.
func TestStateCommandRedis(t *testing.T) {
	srv := testredis.Start(t)
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer c.Close()
	if err := c.ConfigSet(ctx, "requirepass", "s3cret").Err(); err != nil {
		t.Fatal(err)
	}
	c = redis.NewClient(&redis.Options{Addr: srv.Addr, Password: "s3cret"})
	defer c.Close()
	c.Set(ctx, "site-a:grey:t:192.0.2.0/24|a@sender.test|u@example.org", "1790000000000000", time.Hour)
	c.Set(ctx, "site-a:rate:c:192.0.2.7", "1790000000000000", time.Hour)
	c.Set(ctx, "site-b:rate:c:192.0.2.7", "1790000000000000", time.Hour)
	dir := t.TempDir()
	pass := filepath.Join(dir, "redis.pass")
	os.WriteFile(pass, []byte("s3cret\n"), 0o600)
	cfg := "hostname: mx.example.org\nlisten:\n  - address: LISTEN\nbackend:\n  address: builtin:" + t.TempDir() +
		"\ndomains: [example.org]\nstate:\n  redis:\n    address: " + srv.Addr + "\n    password_file: " + pass + "\n    key_prefix: \"site-a:\"\n"
	d, _ := startMxguard(t, cfg)
	cfgPath := d.cmd.Args[len(d.cmd.Args)-1]
	code, out, errb := runBinary(t, "state", "list", "--config", cfgPath, "--client", "192.0.2.7")
	if code != 0 || !regexp.MustCompile("^grey:t:192.0.2.0/24\\|a@sender.test\\|u@example.org\tsince 2026-09-21T14:13:20Z\tttl (59m5\\ds|1h0m0s)\n"+
		"rate:c:192.0.2.7\ttat 2026-09-21T14:13:20Z\tttl (59m5\\ds|1h0m0s)\n$").MatchString(out) {
		t.Fatalf("list: exit %d\n%q\n%s", code, out, errb)
	}
	if code, out, _ = runBinary(t, "state", "delete", "--config", cfgPath, "rate:c:192.0.2.7"); code != 0 {
		t.Fatalf("delete: exit %d\n%s", code, out)
	}
	if n := c.Exists(ctx, "site-a:rate:c:192.0.2.7", "site-b:rate:c:192.0.2.7").Val(); n != 1 {
		t.Fatalf("%d of the two prefixes' buckets left, want site-b's", n)
	}
	if strings.Contains(d.out.String(), "does not answer") {
		t.Errorf("serve could not reach Redis with the password:\n%s", d.out.String())
	}
	os.WriteFile(pass, []byte("wrong\n"), 0o600)
	if code, _, errb = runBinary(t, "state", "list", "--config", cfgPath); code != 1 || !strings.Contains(errb, "WRONGPASS") {
		t.Fatalf("a wrong password: exit %d, %s", code, errb)
	}
}
