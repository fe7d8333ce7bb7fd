// Package testpostfix starts a real, throw-away Postfix instance for tests.
//
// mxguard sits in front of a real mail server, and several behaviours we
// care about (XCLIENT/XFORWARD hand-over, queue ids in replies, what the
// backend logs as the client address) can only be verified against the real
// thing; a Go fake would just echo our own assumptions back at us. This
// package therefore drives the Debian "postfix" package binaries with a
// private configuration, queue, data directory and log file under a
// temporary folder, so that any number of instances can run side by side
// without touching /etc/postfix, /var/spool/postfix or syslog.
//
// Everything stays on 127.0.0.1: smtpd listens on a random loopback port, the
// smtp client binds to 127.0.0.1 and only relays to the loopback sink given in
// Options.RelayTo, and all DNS lookups are switched off.
//
// Requirements: root (Postfix daemons drop to the "postfix" user, which only
// root can arrange) and Postfix >= 3.4 (for maillog_file/postlogd). On CI
// these come from .ci/run ("apt-get install -y postfix swaks"). Tests call
// t.Fatal, never t.Skip, when Postfix is missing: the project rule is that no
// test skips itself on CI, and Start enforces that.
//
// Typical use:
//
//	pf := testpostfix.Start(t, testpostfix.Options{
//		Domains:      []string{"example.org"},
//		RelayTo:      sinkAddr, // e.g. an in-process go-smtp server
//		XClientHosts: "127.0.0.0/8",
//	})
//	// point mxguard's backend at pf.Addr ...
//	line := pf.WaitLog(t, "client=client.example.net[203.0.113.7]", 10*time.Second)
package testpostfix

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Paths of the Debian postfix package. They are fixed rather than looked up
// in $PATH because the test process may run with a minimal PATH that lacks
// /usr/sbin, and Postfix itself only ever uses its compiled-in
// command_directory/daemon_directory.
const (
	postfixBin  = "/usr/sbin/postfix"
	postconfBin = "/usr/sbin/postconf"
)

// dirPrefix names every instance directory, so orphans of crashed test
// binaries can be recognised (see reapOrphans).
const dirPrefix = "mxguard-postfix-"

// Options configures an instance. The zero value gives a Postfix that
// accepts mail only from 127.0.0.0/8 (it relays anything for mynetworks) and
// discards what it accepts.
type Options struct {
	// Domains lists the domains this Postfix accepts mail for from any
	// client (relay_domains). Needed as soon as a test uses XCLIENT, because
	// the client address then leaves mynetworks and Postfix applies its
	// normal anti-relay rules to the forwarded address.
	Domains []string

	// RelayTo is the host:port of a loopback SMTP sink where Postfix
	// forwards all accepted mail (relay_transport and relayhost), so the test
	// can read what Postfix actually delivered, including the Received
	// header it added. The host must be an IPv4 loopback address: network
	// traffic must never leave 127.0.0.0/8. Empty means accepted mail is
	// discarded (discard transport), for tests that only care about the SMTP
	// dialogue with Postfix.
	RelayTo string

	// XClientHosts is smtpd_authorized_xclient_hosts, e.g. "127.0.0.0/8"
	// to let mxguard hand over the original client's address. Empty
	// disables XCLIENT.
	XClientHosts string

	// XForwardHosts is smtpd_authorized_xforward_hosts. Empty disables
	// XFORWARD.
	XForwardHosts string

	// Extra holds additional main.cf parameters (name -> value). They are
	// applied last and override the package defaults, e.g.
	// {"message_size_limit": "1000"} or {"smtpd_recipient_restrictions":
	// "reject_unauth_destination"}. Values must not contain newlines.
	Extra map[string]string
}

// Instance is a running Postfix. It is stopped and its directory removed by
// t.Cleanup; Stop can also be called earlier.
type Instance struct {
	// Addr is the 127.0.0.1:port where smtpd accepts connections. By the
	// time Start returns it has answered with a 220 banner.
	Addr string
	// Dir is the instance's private root: config/, queue/, data/ and
	// maillog live under it. It is removed on Stop.
	Dir string
	// ConfigDir is the config_directory (main.cf, master.cf), the value to
	// pass to "postfix -c", "postconf -c", "postqueue -c" etc. when a test
	// wants to poke at the instance with the command line tools.
	ConfigDir string
	// LogPath is Postfix's maillog_file. Prefer Log or WaitLog, which keep
	// working after Stop.
	LogPath string

	logf     func(string, ...any)
	errorf   func(string, ...any)
	stopOnce sync.Once
	mu       sync.Mutex
	finalLog string // the log as it was just before Dir was removed
	stopped  bool
}

// Available reports whether a Postfix instance can be started here: the
// Debian postfix binaries (>= 3.4) are installed, the postfix user and
// postdrop group exist, and we run as root. Tests should t.Fatal (not Skip)
// on a non-nil error; Start already does so.
func Available() error {
	if os.Geteuid() != 0 {
		// Postfix's daemons run as mail_owner and need root-owned,
		// postfix-owned and postdrop-owned queue directories; only root
		// can create those.
		return errors.New("testpostfix: must run as root (Postfix needs to chown its queue to the postfix user)")
	}
	for _, p := range []string{postfixBin, postconfBin} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("testpostfix: %v (install the postfix package: apt-get install -y postfix)", err)
		}
	}
	out, err := exec.Command(postconfBin, "-d", "-h", "mail_version", "daemon_directory").Output()
	if err != nil {
		return fmt.Errorf("testpostfix: postconf -d: %v", err)
	}
	fields := strings.Fields(string(out))
	if len(fields) != 2 {
		return fmt.Errorf("testpostfix: unexpected postconf output %q", out)
	}
	if !versionAtLeast(fields[0], 3, 4) {
		// maillog_file and the postlogd service arrived in 3.4; without them
		// the log would go to syslog, where tests cannot read it.
		return fmt.Errorf("testpostfix: Postfix %s is too old, need >= 3.4", fields[0])
	}
	if _, err := os.Stat(filepath.Join(fields[1], "master")); err != nil {
		return fmt.Errorf("testpostfix: %v", err)
	}
	if _, err := user.Lookup("postfix"); err != nil {
		return fmt.Errorf("testpostfix: user postfix: %v", err)
	}
	if _, err := user.LookupGroup("postdrop"); err != nil {
		return fmt.Errorf("testpostfix: group postdrop: %v", err)
	}
	return nil
}

func versionAtLeast(v string, major, minor int) bool {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}

// Start creates and starts a Postfix instance and returns once its smtpd
// answers with a 220 banner. Any failure is fatal to the test (t.Fatal),
// including Postfix not being installed. t.Cleanup stops every process of the
// instance and removes its directory; if the test failed, the Postfix log is
// attached to the test output first.
func Start(t testing.TB, opts Options) *Instance {
	t.Helper()
	inst, err := launch(opts, t.Logf, t.Errorf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("testpostfix: log of instance %s:\n%s", inst.Dir, inst.Log())
		}
		inst.Stop()
	})
	return inst
}

// Launch starts an instance outside a test, for tools such as the
// benchmark's bench/postfix; the caller must Stop it. Problems while
// stopping are written to standard error.
func Launch(opts Options) (*Instance, error) {
	report := func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
	return launch(opts, report, report)
}

// launch is Start and Launch: it returns a running instance, or an error
// and nothing left running. logf and errorf report what Stop meets.
func launch(opts Options, logf, errorf func(string, ...any)) (_ *Instance, err error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if err := validate(opts); err != nil {
		return nil, err
	}

	base := baseDir()
	reapOrphans(base)
	dir, err := os.MkdirTemp(base, dirPrefix)
	if err != nil {
		return nil, err
	}
	// MkdirTemp gives 0700, but the daemons run as "postfix" and must be
	// able to reach queue/ and data/ below it.
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	// Record who owns this instance so a later run can clean up after a
	// test binary that was killed before its t.Cleanup ran.
	if err := os.WriteFile(filepath.Join(dir, "owner"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	inst := &Instance{
		Dir:       dir,
		ConfigDir: filepath.Join(dir, "config"),
		LogPath:   filepath.Join(dir, "maillog"),
		logf:      logf,
		errorf:    errorf,
	}
	defer func() {
		if err != nil {
			inst.Stop()
		}
	}()
	if err := os.Mkdir(inst.ConfigDir, 0o755); err != nil {
		return nil, err
	}
	// The postfix command chdirs into queue_directory before anything else,
	// so it must exist (root-owned, 0755 as Postfix expects). Its
	// subdirectories and data/ are left to "postfix start", which runs
	// post-install create-missing and so gets the owners and modes Postfix
	// insists on (data/ must belong to postfix, maildrop/ to postdrop...).
	if err := os.Mkdir(filepath.Join(dir, "queue"), 0o755); err != nil {
		return nil, err
	}
	if err := writeConfig(filepath.Join(inst.ConfigDir, "main.cf"), mainCF(dir, opts)); err != nil {
		return nil, err
	}

	// The port is picked by binding :0 and closing, so another process may
	// grab it before master binds it. That is rare; retry a few times when
	// it happens rather than fail a test for it.
	const attempts = 4
	for try := 1; ; try++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		inst.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if err := writeConfig(filepath.Join(inst.ConfigDir, "master.cf"), masterCF(inst.Addr)); err != nil {
			return nil, err
		}
		logBefore := len(inst.Log())
		err = inst.postfix("start")
		if err == nil {
			break
		}
		inst.killAll(5 * time.Second)
		log := inst.Log()
		if try < attempts && len(log) >= logBefore && strings.Contains(log[logBefore:], "Address already in use") {
			continue
		}
		return nil, fmt.Errorf("testpostfix: postfix start: %v\nlog:\n%s", err, log)
	}

	if err := waitBanner(inst.Addr, 15*time.Second); err != nil {
		return nil, fmt.Errorf("testpostfix: %v\nlog:\n%s", err, inst.Log())
	}
	return inst, nil
}

// writeConfig writes a Postfix configuration file and backdates it. Postfix
// refuses to read a table or main.cf whose mtime is within the last second
// or so (it might still be being edited) and polls every 300 ms until the
// file is old enough; a fresh file would cost ~1.5 s per postfix command.
func writeConfig(path, content string) error {
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		return err
	}
	old := time.Now().Add(-time.Hour)
	return os.Chtimes(path, old, old)
}

func validate(o Options) error {
	for _, d := range o.Domains {
		if d == "" || strings.ContainsAny(d, " \t\r\n,") {
			return fmt.Errorf("testpostfix: bad domain %q", d)
		}
	}
	if o.RelayTo != "" {
		host, port, err := net.SplitHostPort(o.RelayTo)
		if err != nil {
			return fmt.Errorf("testpostfix: RelayTo %q: %v", o.RelayTo, err)
		}
		ip := net.ParseIP(host)
		if ip == nil || ip.To4() == nil || !ip.IsLoopback() {
			// Keeps test traffic on loopback and avoids any name lookup;
			// IPv4 only because the instance runs with inet_protocols=ipv4.
			return fmt.Errorf("testpostfix: RelayTo %q: host must be an IPv4 loopback address", o.RelayTo)
		}
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return fmt.Errorf("testpostfix: RelayTo %q: bad port", o.RelayTo)
		}
	}
	for k, v := range o.Extra {
		if k == "" || strings.ContainsAny(k, " \t\r\n=") || strings.ContainsAny(v, "\r\n") {
			return fmt.Errorf("testpostfix: bad Extra parameter %q = %q", k, v)
		}
	}
	if strings.ContainsAny(o.XClientHosts+o.XForwardHosts, "\r\n") {
		return errors.New("testpostfix: newline in XClientHosts/XForwardHosts")
	}
	return nil
}

// baseDir is where instance directories go. Unix-domain socket paths
// (queue/private/proxywrite etc.) are limited to ~107 bytes and every path
// component must be searchable by the postfix user, so a long or private
// $TMPDIR falls back to /tmp.
func baseDir() string {
	d := os.TempDir()
	if len(d) > 40 || !searchableByOthers(d) {
		return "/tmp"
	}
	return d
}

func searchableByOthers(dir string) bool {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	for {
		fi, err := os.Stat(dir)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return false
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return true
		}
		dir = parent
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// mainCF renders main.cf. Every parameter is set for a reason given next to
// it; Extra entries replace defaults in place or are appended.
func mainCF(dir string, o Options) string {
	name := "mxg-" + strings.TrimPrefix(filepath.Base(dir), dirPrefix)
	relay := "discard:testpostfix-no-RelayTo"
	relayhost := ""
	if o.RelayTo != "" {
		host, port, _ := net.SplitHostPort(o.RelayTo)
		// Brackets: no MX lookup, connect to exactly this address.
		relayhost = "[" + host + "]:" + port
		relay = "relay:" + relayhost
	}
	params := [][2]string{
		// Pin behaviour to current defaults and silence the
		// "using backwards-compatible default setting" warnings.
		{"compatibility_level", "3.6"},
		// Private directories; only the binaries and the read-only
		// meta_directory (/etc/postfix/postfix-files, dynamicmaps.cf) are
		// shared with the system installation.
		{"queue_directory", filepath.Join(dir, "queue")},
		{"data_directory", filepath.Join(dir, "data")},
		// Distinct names keep concurrent instances apart in the log and in
		// postfix-script's multi-instance checks.
		{"multi_instance_name", name},
		{"syslog_name", name},
		// Log to a file the test can read (served by postlogd in master.cf)
		// instead of syslog, which may not even run on CI.
		{"maillog_file", filepath.Join(dir, "maillog")},
		{"maillog_file_prefixes", dir},
		// Loopback only, IPv4 only, for listening and for delivering.
		{"inet_interfaces", "127.0.0.1"},
		{"inet_protocols", "ipv4"},
		{"smtp_bind_address", "127.0.0.1"},
		{"smtp_address_preference", "ipv4"},
		{"mynetworks", "127.0.0.0/8"},
		// No DNS at all: no reverse lookup of clients, no MX/A lookups
		// for next hops (RelayTo is a bracketed IP anyway), and a fixed
		// hostname so Postfix never asks the resolver who it is.
		{"myhostname", "backend.test"},
		{"mydomain", "backend.test"},
		{"myorigin", "$myhostname"},
		{"smtpd_peername_lookup", "no"},
		{"disable_dns_lookups", "yes"},
		{"smtp_dns_support_level", "disabled"},
		{"smtp_host_lookup", "native"},
		{"lmtp_host_lookup", "native"},
		// Never deliver locally (that would write to /var/mail and read
		// /etc/aliases): every accepted message goes to the relay target.
		{"mydestination", ""},
		{"local_recipient_maps", ""},
		{"alias_maps", ""},
		{"alias_database", ""},
		{"local_transport", "error:local delivery disabled"},
		{"relay_domains", strings.Join(o.Domains, ", ")},
		{"relayhost", relayhost},
		{"relay_transport", relay},
		{"default_transport", relay},
		// Plain-text SMTP both ways: no certificates needed, and the sink
		// need not speak STARTTLS.
		{"smtpd_tls_security_level", "none"},
		{"smtp_tls_security_level", "none"},
		{"smtpd_authorized_xclient_hosts", o.XClientHosts},
		{"smtpd_authorized_xforward_hosts", o.XForwardHosts},
		// Tests want delivery within seconds, also after a failed attempt
		// (e.g. the sink was not up yet), and no artificial slow-down
		// under load.
		{"queue_run_delay", "1s"},
		{"minimal_backoff_time", "1s"},
		{"maximal_backoff_time", "2s"},
		{"in_flow_delay", "0"},
		{"delay_warning_time", "0"},
		// One SMTP session per delivery, so a sink sees sessions end
		// promptly instead of being held open by scache.
		{"smtp_connection_cache_on_demand", "no"},
		{"biff", "no"},
	}
	seen := map[string]bool{}
	for i, p := range params {
		seen[p[0]] = true
		if v, ok := o.Extra[p[0]]; ok {
			params[i][1] = v
		}
	}
	var extra []string
	for k := range o.Extra {
		if !seen[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	for _, k := range extra {
		params = append(params, [2]string{k, o.Extra[k]})
	}
	var b strings.Builder
	b.WriteString("# Generated by mxguard/internal/testpostfix.\n")
	for _, p := range params {
		fmt.Fprintf(&b, "%s = %s\n", p[0], p[1])
	}
	return b.String()
}

// masterCF renders master.cf: only the services a relay-only MTA needs. The
// chroot column is "n" everywhere: a chroot would need copies of
// /etc/services, resolv.conf etc. inside the private queue directory, which
// gains nothing in a test. postlogd is required by maillog_file.
func masterCF(addr string) string {
	return `# Generated by mxguard/internal/testpostfix.
# service  type  private unpriv chroot wakeup maxproc command
` + addr + ` inet n - n - - smtpd
pickup     unix  n - n 60 1 pickup
cleanup    unix  n - n - 0 cleanup
qmgr       unix  n - n 300 1 qmgr
rewrite    unix  - - n - - trivial-rewrite
bounce     unix  - - n - 0 bounce
defer      unix  - - n - 0 bounce
trace      unix  - - n - 0 bounce
verify     unix  - - n - 1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n - - proxymap
proxywrite unix  - - n - 1 proxymap
smtp       unix  - - n - - smtp
relay      unix  - - n - - smtp
showq      unix  n - n - - showq
error      unix  - - n - - error
retry      unix  - - n - - error
discard    unix  - - n - - discard
anvil      unix  - - n - 1 anvil
scache     unix  - - n - 1 scache
postlog    unix-dgram n - n - 1 postlogd
`
}

// postfix runs "postfix -c ConfigDir <cmd>". "start" runs the integrity
// checks (post-install create-missing builds queue/ and data/) and then
// "master -w", which daemonises but only returns after master has finished
// initialising, i.e. after its listening socket is bound.
func (i *Instance) postfix(cmd string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, postfixBin, "-c", i.ConfigDir, cmd).CombinedOutput()
	if err != nil {
		return fmt.Errorf("postfix -c %s %s: %v: %s", i.ConfigDir, cmd, err, bytes.TrimSpace(out))
	}
	return nil
}

// waitBanner connects until smtpd greets with 220. master has bound the
// socket already, but smtpd is spawned on the first connection and a fresh
// instance may need a moment.
func waitBanner(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		last = readBanner(addr)
		if last == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("no 220 banner from %s within %v: %v", addr, timeout, last)
}

func readBanner(addr string) error {
	c, err := net.DialTimeout("tcp4", addr, 2*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "220 ") {
		return fmt.Errorf("unexpected greeting %q", line)
	}
	// Say goodbye so the log shows a clean disconnect, not a lost connection.
	fmt.Fprintf(c, "QUIT\r\n")
	return nil
}

// Log returns Postfix's log so far (its maillog_file). Postfix writes the log
// asynchronously through postlogd, so a line may appear shortly after the
// event; use WaitLog to wait for one. After Stop it returns the log as it
// was when the instance stopped.
func (i *Instance) Log() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.stopped {
		return i.finalLog
	}
	b, _ := os.ReadFile(i.LogPath)
	return string(b)
}

// WaitLog polls the log until a line contains substr and returns that line.
// It fails the test (printing the whole log) if none appears within
// timeout. Useful e.g. for "client=client.example.net[203.0.113.7]" to
// prove Postfix took the client address from XCLIENT.
func (i *Instance) WaitLog(t testing.TB, substr string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		log := i.Log()
		for _, line := range strings.Split(log, "\n") {
			if strings.Contains(line, substr) {
				return line
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("testpostfix: no log line containing %q within %v; log:\n%s", substr, timeout, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops the instance and removes Dir. It waits until every process of
// the instance has exited (escalating to SIGKILL), so nothing is left
// running after a test. It is idempotent and is also called by t.Cleanup;
// call it directly to test behaviour when the backend goes away.
func (i *Instance) Stop() {
	i.stopOnce.Do(func() {
		// "postfix stop" TERMs master, which TERMs its children; it may
		// fail if master never came up, and killAll covers that case.
		if err := i.postfix("stop"); err != nil && len(i.Processes()) > 0 {
			i.logf("testpostfix: %v", err)
		}
		if left := i.killAll(10 * time.Second); len(left) > 0 {
			i.errorf("testpostfix: processes of %s still alive after SIGKILL: %v", i.Dir, left)
		}
		log, _ := os.ReadFile(i.LogPath)
		i.mu.Lock()
		i.finalLog = string(log)
		i.stopped = true
		i.mu.Unlock()
		if err := os.RemoveAll(i.Dir); err != nil {
			i.errorf("testpostfix: %v", err)
		}
	})
}

// Processes returns the PIDs of live (non-zombie) processes belonging to
// this instance. Postfix daemons carry no instance-specific command line,
// so they are recognised by MAIL_CONFIG=<ConfigDir> in their environment,
// which master passes to every child. Empty after Stop.
func (i *Instance) Processes() []int {
	return processesWithConfig(i.ConfigDir)
}

// killAll waits up to timeout for the instance's processes to exit by
// themselves (after "postfix stop"), then SIGKILLs the stragglers and
// returns whichever are still alive after that.
func (i *Instance) killAll(timeout time.Duration) []int {
	deadline := time.Now().Add(timeout)
	for {
		pids := i.Processes()
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, pid := range i.Processes() {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	deadline = time.Now().Add(5 * time.Second)
	for {
		pids := i.Processes()
		if len(pids) == 0 || time.Now().After(deadline) {
			return pids
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func processesWithConfig(configDir string) []int {
	needle := []byte("\x00MAIL_CONFIG=" + configDir + "\x00")
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || !bytes.Contains(append(append([]byte{0}, env...), 0), needle) {
			continue
		}
		if zombie(pid) {
			// Exited, merely not yet reaped by its (re)parent, e.g. a
			// container init that reaps lazily.
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

func zombie(pid int) bool {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return true // gone
	}
	// Format: "pid (comm) S ..."; comm may contain spaces and parentheses.
	j := bytes.LastIndexByte(stat, ')')
	if j < 0 || j+2 >= len(stat) {
		return false
	}
	s := stat[j+2]
	return s == 'Z' || s == 'X'
}

// reapOrphans stops and removes instances whose owning test binary no longer
// exists, e.g. because it was killed by "go test -timeout" before t.Cleanup
// could run. Directories without an owner file are left alone: they may
// belong to a concurrent Start that has not written it yet.
func reapOrphans(base string) {
	dirs, _ := filepath.Glob(filepath.Join(base, dirPrefix+"*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, "owner"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue
		}
		conf := filepath.Join(dir, "config")
		exec.Command(postfixBin, "-c", conf, "stop").Run()
		for _, p := range processesWithConfig(conf) {
			syscall.Kill(p, syscall.SIGKILL)
		}
		os.RemoveAll(dir)
	}
}
