package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"mxguard/checks/resolver/dnstest"
	"mxguard/internal/testbrowser"
	"mxguard/internal/testclamd"
	"mxguard/internal/testrspamd"
)

// binary is the mxguard binary built once for the black-box tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mxguard-bin-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "mxguard")
	if err := setupCoverage(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	build := append(append([]string{"build"}, buildFlags...), "-o", binary, ".")
	if out, err := exec.Command("go", build...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building mxguard: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	testclamd.StopShared()
	testbrowser.StopShared()
	testrspamd.StopShared()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freePort returns a loopback address nothing listens on right now.
func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// daemon is a process started by a test, with its output captured.
type daemon struct {
	cmd *exec.Cmd
	out *syncBuffer
}

func startDaemon(t testing.TB, name string, args ...string) *daemon {
	t.Helper()
	d := &daemon{cmd: exec.Command(name, args...), out: &syncBuffer{}}
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	// Each mxguard keeps its state store in a folder of its own (the
	// default state.dir, as systemd's StateDirectory= sets it), unless
	// its config says otherwise.
	d.cmd.Env = append(os.Environ(), "STATE_DIRECTORY="+t.TempDir())
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		if d.cmd.ProcessState == nil {
			d.stop()
		}
		// The binary is built with -race: a race it reports is a failure,
		// though the test's own assertions held.
		if out := d.out.String(); strings.Contains(out, "WARNING: DATA RACE") {
			t.Errorf("%s reported a data race:\n%s", name, out)
		} else if t.Failed() {
			t.Logf("%s output:\n%s", name, out)
		}
	})
	return d
}

// stop ends the process with SIGTERM, so that mxguard exits as it does in
// production and writes its coverage counters (a killed process writes
// none); a process still running after a while is killed.
func (d *daemon) stop() {
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		_ = d.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = d.cmd.Process.Kill()
		<-done
	}
}

// waitListening waits until addr accepts connections.
func waitListening(t testing.TB, addr string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never started listening: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startMxguard writes config text to a file and runs "mxguard serve". A
// config without a dns section gets the test DNS server with
// testdata/zones/e2e.zone (at the top of the module): no test may query the machine's resolver.
func startMxguard(t testing.TB, cfg string) (*daemon, string) {
	t.Helper()
	return startMxguardBinary(t, binary, cfg)
}

// startMxguardBinary is startMxguard with another build of mxguard.
func startMxguardBinary(t testing.TB, bin, cfg string) (*daemon, string) {
	t.Helper()
	listen := freePort(t)
	cfg = strings.ReplaceAll(cfg, "LISTEN", listen)
	if !strings.Contains(cfg, "\ndns:") {
		srv := dnstest.StartFiles(t, corpusPath("zones/e2e.zone"))
		cfg += "dns:\n  servers: [" + srv.Addr() + "]\n"
	}
	path := filepath.Join(t.TempDir(), "mxguard.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, bin, "serve", "--config", path)
	waitListening(t, listen)
	return d, listen
}

// sinkMxguard starts mxguard for example.org in front of the built-in
// sink, with extra appended to its config, and returns where it listens
// and the sink's folder.
func sinkMxguard(t testing.TB, extra string) (listen, dir string) {
	t.Helper()
	return sinkMxguardListen(t, "", extra)
}

// sinkMxguardListen is sinkMxguard with more keys for the listener
// (indented as its keys).
func sinkMxguardListen(t testing.TB, listener, extra string) (listen, dir string) {
	t.Helper()
	dir = t.TempDir()
	_, listen = startMxguard(t, `
hostname: mx.example.org
listen:
  - address: LISTEN
`+strings.TrimPrefix(listener, "\n")+`backend:
  address: builtin:`+dir+`
domains: [example.org]
`+extra)
	return listen, dir
}

// storedMessages reads the messages the sink holds in dir, as a mail
// reader would, with their bodies.
func storedMessages(t testing.TB, dir string) ([]*mail.Message, []string) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
	var msgs []*mail.Message
	var bodies []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		m, err := mail.ReadMessage(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("a stored message does not parse: %v\n%.2000s", err, data)
		}
		body, err := io.ReadAll(m.Body)
		if err != nil {
			t.Fatal(err)
		}
		msgs, bodies = append(msgs, m), append(bodies, string(body))
	}
	return msgs, bodies
}

func TestSwaksThroughMxguardToSmtpSink(t *testing.T) {
	for _, tool := range []string{"swaks", "smtp-sink"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (.ci/run installs it): %v", tool, err)
		}
	}
	// smtp-sink writes as nobody, who cannot enter t.TempDir()'s parent.
	dump, err := os.MkdirTemp("", "mxguard-sink-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dump) })
	if err := os.Chmod(dump, 0o777); err != nil {
		t.Fatal(err)
	}
	sinkAddr := freePort(t)
	// smtp-sink: -u drops root privileges, -d dumps each transaction to a
	// file; it advertises XCLIENT and XFORWARD unless told otherwise.
	startDaemon(t, "smtp-sink", "-u", "nobody", "-d", dump+"/%M.", sinkAddr, "64")
	waitListening(t, sinkAddr)
	_, listen := startMxguard(t, `
hostname: mx.example.org
listen:
  - address: LISTEN
backend:
  address: `+sinkAddr+`
domains: [example.org]
`)
	out, err := exec.Command("swaks", "--server", listen, "--helo", "client.example.net",
		"--from", "alice@sender.test", "--to", "user@example.org",
		"--header", "Subject: through mxguard", "--body", "hello via swaks").CombinedOutput()
	if err != nil {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
	if !regexp.MustCompile(`(?m)^<[-~]* +250 2\.0\.0 Ok \(session [A-Z2-7]+\)`).Match(out) {
		t.Fatalf("swaks did not get the backend's 250 relayed:\n%s", out)
	}
	// The sink writes its dump file when the transaction ends.
	var data []byte
	deadline := time.Now().Add(5 * time.Second)
	for data == nil && time.Now().Before(deadline) {
		files, _ := filepath.Glob(filepath.Join(dump, "*"))
		for _, f := range files {
			data, _ = os.ReadFile(f)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, want := range []string{"hello via swaks", "Received: from client.example.net ([127.0.0.1])", "by mx.example.org (mxguard) with ESMTP"} {
		if !bytes.Contains(data, []byte(want)) {
			t.Errorf("smtp-sink's dump lacks %q:\n%s", want, data)
		}
	}

	// A foreign recipient, with swaks: 550 5.7.1.
	out, _ = exec.Command("swaks", "--server", listen, "--helo", "client.example.net",
		"--from", "alice@sender.test", "--to", "victim@elsewhere.test").CombinedOutput()
	if !bytes.Contains(out, []byte("550 5.7.1 relay access denied")) {
		t.Fatalf("swaks to a foreign domain:\n%s", out)
	}
}

func TestBadConfigExitsWithPosition(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(path, []byte("hostname: mx.example.org\nlisten:\n  - address: 127.0.0.1:2525\nbackend:\n  address: 127.0.0.1:2526\n  protocl: lmtp\ndomains: [example.org]\n"), 0o600)
	out, err := exec.Command(binary, "serve", "--config", path).CombinedOutput()
	var ee *exec.ExitError
	if !errorsAs(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("exit: %v, want code 2; output:\n%s", err, out)
	}
	want := path + ":6:3: "
	if !strings.HasPrefix(string(out), want) || !strings.Contains(string(out), `"protocl"`) {
		t.Fatalf("output %q, want it to start with %q and name the key", out, want)
	}

	// A bad rules file is a bad configuration too: exit 2, before
	// anything starts, with the rule's position.
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	os.WriteFile(rules, []byte("rules:\n  - name: x\n    when: nosuch.fact\n    action: reject\n"), 0o600)
	os.WriteFile(path, []byte("hostname: mx.example.org\nlisten:\n  - address: "+freePort(t)+"\nbackend:\n  address: 127.0.0.1:2526\ndomains: [example.org]\nrules: ["+rules+"]\n"), 0o600)
	out, err = exec.Command(binary, "serve", "--config", path).CombinedOutput()
	if !errorsAs(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("bad rules file: exit %v, want code 2; output:\n%s", err, out)
	}
	if want := rules + ":3:11: "; !strings.HasPrefix(string(out), want) {
		t.Fatalf("bad rules file: output %q, want it to start with %q", out, want)
	}
}

func TestSIGTERMDrains(t *testing.T) {
	sinkDir := t.TempDir()
	d, listen := startMxguard(t, `
hostname: mx.example.org
listen:
  - address: LISTEN
backend:
  address: "builtin:`+sinkDir+`"
domains: [example.org]
drain_timeout: 10s
log:
  format: json
`)
	c, err := net.Dial("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReader(c)
	expect := func(cmd, want string) {
		t.Helper()
		if cmd != "" {
			fmt.Fprintf(c, "%s\r\n", cmd)
		}
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("after %q: %v", cmd, err)
			}
			if line[3] == ' ' {
				if !strings.HasPrefix(line, want) {
					t.Fatalf("after %q: got %q, want %q", cmd, line, want)
				}
				return
			}
		}
	}
	expect("", "220 ")
	expect("EHLO client.example.net", "250 ")
	expect("MAIL FROM:<a@sender.test>", "250 ")
	expect("RCPT TO:<user@example.org>", "250 ")
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The transaction in flight still completes after SIGTERM.
	time.Sleep(200 * time.Millisecond)
	expect("DATA", "354 ")
	fmt.Fprintf(c, "From: a@sender.test\r\nSubject: drain\r\n\r\nbody\r\n.\r\n")
	expect("", "250 2.0.0 Ok: queued as ")
	// Between transactions the session is told at once.
	expect("", "421 4.3.2")
	if err := d.cmd.Wait(); err != nil {
		t.Fatalf("mxguard exited with %v after SIGTERM, want 0", err)
	}
	files, _ := filepath.Glob(filepath.Join(sinkDir, "*.eml"))
	if len(files) != 1 {
		t.Fatalf("backend holds %d messages, want 1", len(files))
	}
	// log.format: json gives one JSON object per line.
	for _, line := range strings.Split(strings.TrimSpace(d.out.String()), "\n") {
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil || v["msg"] == nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
	}
	if !strings.Contains(d.out.String(), `"msg":"message forwarded"`) {
		t.Fatalf("no JSON log of the forwarded message:\n%s", d.out.String())
	}
}

func TestDemoOnce(t *testing.T) {
	dir := t.TempDir()
	out, err := exec.Command(binary, "demo", "--once", "--listen", freePort(t), "--dir", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	for _, want := range []string{"250 2.0.0 Ok: queued as", "550 5.7.1 relay", "554 5.6.0", "550 5.7.1 message refused: the DMARC policy", "holds 1 message"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	// demo -h says how many messages the demonstration sends: as many as
	// it shows.
	shown := len(regexp.MustCompile(`(?m)^\d+\. `).FindAll(out, -1))
	var help strings.Builder
	run([]string{"demo", "-h"}, &help, &help)
	if want := fmt.Sprintf("sends %d messages", shown); shown != len(demoSteps()) || !strings.Contains(help.String(), want) {
		t.Errorf("the demonstration shows %d messages; demo -h should say %q:\n%s", shown, want, help.String())
	}
	files, _ := filepath.Glob(filepath.Join(dir, "mail", "*.eml"))
	if len(files) != 1 {
		t.Fatalf("demo stored %d messages, want 1", len(files))
	}
	// The demo keeps its state store under --dir, not in /var/lib.
	if _, err := os.Stat(filepath.Join(dir, "state", "state.db")); err != nil {
		t.Errorf("demo's state store: %v", err)
	}
	data, _ := os.ReadFile(files[0])
	if !bytes.Contains(data, []byte("Authentication-Results: mx.example.org;\r\n\tspf=pass smtp.mailfrom=alice@sender.test;\r\n\tdkim=none;\r\n\tdmarc=pass header.from=sender.test")) {
		t.Errorf("stored message lacks the Authentication-Results header:\n%s", data)
	}
}

func TestUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"version"}, 0, "mxguard dev"},
		{[]string{"version", "-h"}, 0, "usage: mxguard version"},
		{[]string{"serve", "-h"}, 0, "usage: mxguard serve"},
		{[]string{"demo", "-h"}, 0, "usage: mxguard demo"},
		{[]string{"sink", "-h"}, 0, "usage: mxguard sink"},
		{[]string{"frobnicate"}, 2, "unknown command"},
		{nil, 2, "usage: mxguard <command>"},
		{[]string{"serve", "--config", "/nonexistent/mxguard.yaml"}, 2, "/nonexistent/mxguard.yaml"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(c.args, &stdout, &stderr)
		if code != c.code || !strings.Contains(stdout.String()+stderr.String(), c.want) {
			t.Errorf("mxguard %v: exit %d, output %q; want exit %d and %q", c.args, code, stdout.String()+stderr.String(), c.code, c.want)
		}
	}
}
