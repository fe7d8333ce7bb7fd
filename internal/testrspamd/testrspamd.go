// Package testrspamd starts a real, throw-away rspamd for tests, with a
// minimal configuration the package writes itself.
//
// What matters of rspamd (its HTTP protocol, how it reads the envelope
// headers, its JSON reply, what a client sees when it is gone) can only be
// tested against the real daemon. This package runs the Debian "rspamd"
// package's binary in the foreground in a temporary folder, with only the
// normal worker, listening on a free loopback port. It loads none of
// rspamd's own rules and modules (no Redis, no DNS lists, no fuzzy
// storage): its only rules are mxguard's test symbols (lua, below), which
// fire on markers in the Subject, so that a test chooses the score and
// the action. Its resolver is pointed at a loopback port where nothing
// answers: nothing it does can reach the internet or the machine's
// resolver. Tests call t.Fatal, never t.Skip, when the binary is missing:
// no test skips itself on CI (test.sh installs the package).
//
// rspamd takes about a second to start, so a test package shares one
// daemon (Shared, stopped by StopShared from TestMain); a test that stops
// and starts rspamd has its own (Start).
package testrspamd

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"mxguard/internal/testshared"
)

// Binary is the Debian package's daemon.
const Binary = "/usr/bin/rspamd"

// Markers: a message whose Subject holds one gets the test symbol and
// score beside it, and so the action.
const (
	// RejectMarker fires MXGUARD_TEST_REJECT, score RejectScore: action
	// reject.
	RejectMarker = "MXGUARD-RSPAMD-REJECT"
	// SpamMarker fires MXGUARD_TEST_SPAM, score SpamScore: action add
	// header.
	SpamMarker = "MXGUARD-RSPAMD-SPAM"
	// RewriteMarker fires MXGUARD_TEST_REWRITE, score RewriteScore:
	// action rewrite subject.
	RewriteMarker = "MXGUARD-RSPAMD-REWRITE"
	// SoftMarker fires MXGUARD_TEST_SOFT, score 0, which forces the
	// action soft reject.
	SoftMarker = "MXGUARD-RSPAMD-SOFT"
	// EnvelopeMarker fires, with score 0, one MXGUARD_ENV_* symbol for
	// each part of the envelope rspamd was given (EnvelopeSymbols).
	EnvelopeMarker = "MXGUARD-RSPAMD-ENVELOPE"
)

// The test symbols' names and scores, and the action thresholds.
const (
	RejectSymbol  = "MXGUARD_TEST_REJECT"
	SpamSymbol    = "MXGUARD_TEST_SPAM"
	RewriteSymbol = "MXGUARD_TEST_REWRITE"
	SoftSymbol    = "MXGUARD_TEST_SOFT"

	RejectScore  = 20.5
	SpamScore    = 7.25
	RewriteScore = 10

	// Required is the reject action's threshold (rspamd's
	// required_score); the add header and rewrite subject actions start
	// at 6 and 9.
	Required = 15
)

// EnvelopeSymbols are the symbols EnvelopeMarker fires, each when rspamd
// knows the part of the envelope it names: the client's IP, its HELO
// name, its host name, the envelope sender as FromWant and RcptsWant
// recipients, the queue id.
var EnvelopeSymbols = []string{"MXGUARD_ENV_FROM", "MXGUARD_ENV_HELO", "MXGUARD_ENV_HOSTNAME", "MXGUARD_ENV_IP",
	"MXGUARD_ENV_QUEUE_ID", "MXGUARD_ENV_RCPTS"}

// FromWant and RcptsWant are the envelope sender and the number of
// recipients for which MXGUARD_ENV_FROM and MXGUARD_ENV_RCPTS fire.
const (
	FromWant  = "alice@sender.test"
	RcptsWant = 2
)

// TB is the part of testing.TB the package uses.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	TempDir() string
	Cleanup(func())
}

var _ TB = (testing.TB)(nil)

// Server is one running rspamd.
type Server struct {
	// Addr is its normal worker's address (127.0.0.1:PORT).
	Addr string
	dir  string

	mu  sync.Mutex
	cmd *exec.Cmd
	// exited is closed when cmd has exited (its Wait returned).
	exited chan struct{}
}

// URL is the normal worker's URL as mxguard's config writes it
// (rspamd.url).
func (s *Server) URL() string { return "http://" + s.Addr }

// Start starts an rspamd of the test's own; it is stopped when the test
// ends.
func Start(t TB) *Server {
	t.Helper()
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatalf("testrspamd: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

var shared = testshared.Daemon[*Server]{
	Name:  "testrspamd",
	Start: func(dir string) (*Server, error) { return New(dir) },
	Stop:  (*Server).Stop,
}

// Shared is the test package's one rspamd, started at its first call;
// TestMain stops it with StopShared.
func Shared(t TB) *Server {
	t.Helper()
	return shared.Get(t)
}

// StopShared stops the shared rspamd, if one was started, and removes its
// folder. TestMain calls it after the tests.
func StopShared() { shared.Close() }

// New writes a configuration in dir and starts rspamd on it; the caller
// stops it.
func New(dir string) (*Server, error) {
	if _, err := os.Stat(Binary); err != nil {
		return nil, fmt.Errorf("%w (install the rspamd package: ./test.sh does)", err)
	}
	port, err := freePort("tcp")
	if err != nil {
		return nil, err
	}
	// rspamd's resolver asks here, and nothing answers: none of the
	// rules loaded makes a lookup, and none could leave the machine.
	dnsPort, err := freePort("udp")
	if err != nil {
		return nil, err
	}
	s := &Server{Addr: "127.0.0.1:" + strconv.Itoa(port), dir: dir}
	// The public suffix list of the package takes rspamd ten seconds to
	// compile; the test messages' URLs need only these.
	if err := os.WriteFile(filepath.Join(dir, "tld.dat"), []byte("com\nnet\norg\ntest\nexample\n"), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "mxguard-test.lua"), []byte(testLua), 0o644); err != nil {
		return nil, err
	}
	conf := strings.NewReplacer("DIR", dir, "DNSPORT", strconv.Itoa(dnsPort), "ADDR", s.Addr).Replace(confTemplate)
	if err := os.WriteFile(filepath.Join(dir, "rspamd.conf"), []byte(conf), 0o644); err != nil {
		return nil, err
	}
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, nil
}

// confTemplate is rspamd.conf: no include of the package's
// configuration, so nothing but what is here runs.
const confTemplate = `options {
  pidfile = "DIR/rspamd.pid";
  filters = "";
  explicit_modules = [];
  dns { nameserver = ["127.0.0.1:DNSPORT"]; timeout = 1s; retransmits = 1; }
  cache_file = "DIR/symbols.cache";
  dynamic_conf = "DIR/dynamic.json";
  history_file = "DIR/history";
  control_socket = "DIR/rspamd.sock mode=0600";
  tempdir = "DIR";
  url_tld = "DIR/tld.dat";
  allow_raw_input = true;
}
logging {
  type = "file";
  filename = "DIR/rspamd.log";
  level = "info";
}
actions {
  greylist = 4;
  add_header = 6;
  rewrite_subject = 9;
  reject = 15;
}
lua = "DIR/mxguard-test.lua";
worker "normal" {
  bind_socket = "ADDR";
  count = 1;
  mime = true;
}
`

// testLua defines the test symbols.
const testLua = `
local function subject_has(task, marker)
  local s = task:get_subject()
  return s ~= nil and s:find(marker, 1, true) ~= nil
end

local function marker_symbol(name, marker, score)
  rspamd_config:register_symbol({
    name = name, score = score, group = 'mxguard',
    callback = function(task) return subject_has(task, marker) end,
  })
end
marker_symbol('MXGUARD_TEST_REJECT', 'MXGUARD-RSPAMD-REJECT', 20.5)
marker_symbol('MXGUARD_TEST_SPAM', 'MXGUARD-RSPAMD-SPAM', 7.25)
marker_symbol('MXGUARD_TEST_REWRITE', 'MXGUARD-RSPAMD-REWRITE', 10.0)

rspamd_config:register_symbol({
  name = 'MXGUARD_TEST_SOFT', score = 0.0, group = 'mxguard', type = 'prefilter', priority = 10,
  callback = function(task)
    if subject_has(task, 'MXGUARD-RSPAMD-SOFT') then
      task:set_pre_result('soft reject', 'mxguard test: try again later', 'mxguard')
      task:insert_result('MXGUARD_TEST_SOFT', 1.0)
    end
  end,
})

local function envelope_symbol(name, test)
  rspamd_config:register_symbol({
    name = name, score = 0.0, group = 'mxguard',
    callback = function(task)
      if not subject_has(task, 'MXGUARD-RSPAMD-ENVELOPE') then return false end
      local ok, res = pcall(test, task)
      return ok and res == true
    end,
  })
end
envelope_symbol('MXGUARD_ENV_IP', function(task)
  local ip = task:get_from_ip()
  return ip ~= nil and ip:is_valid()
end)
envelope_symbol('MXGUARD_ENV_HELO', function(task)
  local h = task:get_helo()
  return h ~= nil and h ~= ''
end)
envelope_symbol('MXGUARD_ENV_HOSTNAME', function(task)
  local h = task:get_hostname()
  return h ~= nil and h ~= '' and h ~= 'unknown'
end)
envelope_symbol('MXGUARD_ENV_FROM', function(task)
  local f = task:get_from('smtp')
  return f ~= nil and f[1] ~= nil and f[1].addr == 'alice@sender.test'
end)
envelope_symbol('MXGUARD_ENV_RCPTS', function(task)
  local r = task:get_recipients('smtp')
  return r ~= nil and #r == 2
end)
envelope_symbol('MXGUARD_ENV_QUEUE_ID', function(task)
  local q = task:get_queue_id()
  return q ~= nil and q ~= ''
end)
`

// freePort is a loopback port that was free a moment ago.
func freePort(network string) (int, error) {
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port, nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// start runs rspamd and waits until its normal worker answers /ping.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	out, err := os.OpenFile(filepath.Join(s.dir, "rspamd.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer out.Close()
	args := []string{"-f", "-c", filepath.Join(s.dir, "rspamd.conf")}
	if os.Geteuid() == 0 {
		// rspamd refuses to run its workers as root unless told (-i);
		// a test in a container runs as root.
		args = append(args, "-i", "-u", "root", "-g", "root")
	}
	cmd := exec.Command(Binary, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Dir = s.dir
	if err := cmd.Start(); err != nil {
		return err
	}
	s.cmd = cmd
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			s.cmd = nil
			return fmt.Errorf("rspamd exited:\n%s", s.Logs())
		default:
		}
		if Ping(s.Addr) == nil {
			s.exited = exited
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.kill(cmd, exited)
	s.cmd = nil
	return fmt.Errorf("rspamd did not answer /ping within 60s:\n%s", s.Logs())
}

// Logs are the end of rspamd's output and log, for a failing test to
// print.
func (s *Server) Logs() string {
	a, _ := os.ReadFile(filepath.Join(s.dir, "rspamd.out"))
	b, _ := os.ReadFile(filepath.Join(s.dir, "rspamd.log"))
	all := string(a) + string(b)
	if len(all) > 8000 {
		all = "…" + all[len(all)-8000:]
	}
	return all
}

// kill ends rspamd's main process, which takes its workers with it: a
// SIGTERM, then SIGKILL if it lingers. A worker left behind would keep
// the port.
func (s *Server) kill(cmd *exec.Cmd, exited chan struct{}) {
	_ = cmd.Process.Signal(os.Interrupt)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
	// The workers leave once the main process has gone; wait for the
	// port to be free, so that a restart can take it again.
	for i := 0; i < 250 && dialable(s.Addr); i++ {
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop stops rspamd and its workers. It may be called more than once.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.kill(s.cmd, s.exited)
	s.cmd = nil
}

// Restart starts a stopped rspamd again, on the same port.
func (s *Server) Restart(t TB) {
	t.Helper()
	if err := s.start(); err != nil {
		t.Fatalf("testrspamd: %v", err)
	}
}

func dialable(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// Ping asks the normal worker at addr for /ping and reports whether it
// answered "pong".
func Ping(addr string) error {
	cl := http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := cl.Get("http://" + addr + "/ping")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64))
	if err != nil {
		return err
	}
	if got := strings.TrimSpace(string(b)); resp.StatusCode != http.StatusOK || got != "pong" {
		return fmt.Errorf("/ping answered %d %q", resp.StatusCode, got)
	}
	return nil
}
