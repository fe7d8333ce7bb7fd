package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"io/fs"
	"log/slog"
	"math/big"
	"mxguard/checks/headers"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"mxguard/internal/confval"
	"mxguard/internal/yamlpos"
)

var update = flag.Bool("update", false, "rewrite testdata/badconfig/*/expected-error from current output")

// issueExample is the configuration from the issue that introduced mxguard;
// it must keep loading unchanged.
const issueExample = `hostname: mx.example.org
listen:
  - address: 127.0.0.1:2525
backend:
  address: 127.0.0.1:2526
domains: [example.org]
dns:
  servers: [127.0.0.1:5353]
verdict_log: /var/log/mxguard/verdicts.jsonl
limits:
  max_connections: 10000
  max_connections_per_ip: 50
  max_message_bytes: 26214400
  max_recipients: 100
`

func TestIssueExample(t *testing.T) {
	got, err := Parse("config.yaml", []byte(issueExample))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := Default()
	want.Hostname = "mx.example.org"
	want.Listen = []Listener{{Address: "127.0.0.1:2525"}}
	want.Backend.Address = "127.0.0.1:2526"
	want.Backend.HELO = "mx.example.org"     // derived from hostname
	want.Backend.TLSServerName = "127.0.0.1" // derived from address
	want.Hold.Dir = want.State.Dir + "/held" // derived from state.dir
	want.Domains = []string{"example.org"}
	want.DNS.Servers = []string{"127.0.0.1:5353"}
	want.VerdictLog = "/var/log/mxguard/verdicts.jsonl"
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parse(issue example):\n got %+v\nwant %+v", got, want)
	}
}

func TestDefault(t *testing.T) {
	c := Default()
	checks := []struct {
		name      string
		got, want any
	}{
		{name: "hostname", got: c.Hostname, want: ""},
		{name: "listen", got: len(c.Listen), want: 0},
		{name: "backend.protocol", got: string(c.Backend.Protocol), want: "smtp"},
		{name: "backend.starttls", got: string(c.Backend.StartTLS), want: "none"},
		{name: "backend.forward_client", got: string(c.Backend.ForwardClient), want: "auto"},
		{name: "backend.connect_timeout", got: c.Backend.ConnectTimeout.Duration, want: 10 * time.Second},
		{name: "backend.command_timeout", got: c.Backend.CommandTimeout.Duration, want: 60 * time.Second},
		{name: "backend.data_timeout", got: c.Backend.DataTimeout.Duration, want: 5 * time.Minute},
		{name: "backend.max_idle_connections", got: c.Backend.MaxIdleConnections, want: 16},
		{name: "backend.idle_timeout", got: c.Backend.IdleTimeout.Duration, want: 60 * time.Second},
		{name: "dns.servers", got: len(c.DNS.Servers), want: 0},
		{name: "dns.timeout", got: c.DNS.Timeout.Duration, want: 2 * time.Second},
		{name: "verdict_log", got: c.VerdictLog, want: ""},
		{name: "spool.dir", got: c.Spool.Dir, want: os.TempDir()},
		{name: "spool.memory_threshold", got: c.Spool.MemoryThreshold, want: ByteSize(1 << 20)},
		{name: "limits.max_connections", got: c.Limits.MaxConnections, want: 10000},
		{name: "limits.max_connections_per_ip", got: c.Limits.MaxConnectionsPerIP, want: 50},
		{name: "limits.max_message_bytes", got: c.Limits.MaxMessageBytes, want: ByteSize(26214400)},
		{name: "limits.max_recipients", got: c.Limits.MaxRecipients, want: 100},
		{name: "limits.max_errors", got: c.Limits.MaxErrors, want: 10},
		{name: "limits.command_timeout", got: c.Limits.CommandTimeout.Duration, want: 5 * time.Minute},
		{name: "limits.data_timeout", got: c.Limits.DataTimeout.Duration, want: 10 * time.Minute},
		{name: "drain_timeout", got: c.DrainTimeout.Duration, want: 30 * time.Second},
		{name: "log.format", got: string(c.Log.Format), want: "text"},
		{name: "log.level", got: string(c.Log.Level), want: "info"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("Default %s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

// TestExampleFile keeps the documented example at the repo root loadable,
// and pointed only at loopback so trying it out cannot relay anywhere.
func TestExampleFile(t *testing.T) {
	c, err := Load("../mxguard.example.yaml")
	if err != nil {
		t.Fatalf("Load(mxguard.example.yaml):\n%v", err)
	}
	network, addr := c.Backend.Kind()
	if network == "tcp" {
		host, _, err := splitHostPort(addr)
		if a, perr := netip.ParseAddr(host); err != nil || perr != nil || !a.IsLoopback() {
			t.Errorf("example backend %q is not on loopback", addr)
		}
	}
	if len(c.DNS.Servers) == 0 {
		t.Errorf("example has no dns.servers; it would use the system resolver")
	}
	for _, s := range c.DNS.Servers {
		ap, err := netip.ParseAddrPort(s)
		if err != nil || !ap.Addr().IsLoopback() {
			t.Errorf("example dns server %q is not on loopback", s)
		}
	}
	for _, l := range c.Listen {
		if l.TLS != nil {
			t.Errorf("example listener %s has tls enabled; it must stay commented out", l.Address)
		}
	}
}

var posLine = regexp.MustCompile(`^config\.yaml:\d+:\d+: \S`)

// TestBadConfigs runs every testdata/badconfig/NN-name/config.yaml and
// compares the full error output with expected-error. Run with -update to
// regenerate the expected files after an intended message change, then
// review the diff.
func TestBadConfigs(t *testing.T) {
	dirs, err := filepath.Glob("testdata/badconfig/*")
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) < 15 {
		t.Fatalf("found %d bad-config cases, want at least 15", len(dirs))
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(dir, "config.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			_, perr := Parse("config.yaml", data)
			if perr == nil {
				t.Fatalf("Parse succeeded, want errors")
			}
			got := perr.Error() + "\n"
			for _, line := range strings.Split(strings.TrimSuffix(got, "\n"), "\n") {
				if !posLine.MatchString(line) {
					t.Errorf("error line not positioned: %q", line)
				}
			}
			wantFile := filepath.Join(dir, "expected-error")
			if *update {
				if err := os.WriteFile(wantFile, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(wantFile)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("errors differ\n--- got\n%s--- want\n%s", got, want)
			}
		})
	}
}

func TestErrorsType(t *testing.T) {
	_, err := Parse("x.yaml", []byte("hostname: mx.example.org\nbogus: 1\n"))
	var errs *Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error %T is not *Errors", err)
	}
	// bogus, plus the three missing required keys at 1:1.
	if len(*errs) != 4 {
		t.Fatalf("got %d errors, want 4:\n%v", len(*errs), err)
	}
	var pe *PosError
	if !errors.As(err, &pe) {
		t.Fatalf("no *PosError inside %v", err)
	}
	last := (*errs)[3].(*PosError)
	if last.File != "x.yaml" || last.Line != 2 || last.Column != 1 || !strings.HasPrefix(last.Msg, `unknown key "bogus" at top level`) {
		t.Errorf("last error = %#v", last)
	}
	if want := "x.yaml:1:1: missing required key \"listen\"\n"; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Error() = %q, want prefix %q", err.Error(), want)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	var errs *Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error %T is not *Errors", err)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("errors.Is(%v, fs.ErrNotExist) = false", err)
	}
}

func TestLoadUsesPathInMessages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mx.yaml")
	if err := os.WriteFile(path, []byte("hostname: [x]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), path+":1:11: hostname: expected a domain name") {
		t.Errorf("Load error = %v, want it positioned in %s", err, path)
	}
}

// writeCert writes a self-signed ECDSA certificate and its key as PEM.
func writeCert(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "mx.example.org"},
		DNSNames:     []string{"mx.example.org"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func tlsConfig(cert, key, ca string) string {
	return "hostname: mx.example.org\n" +
		"listen:\n" +
		"  - address: 127.0.0.1:2525\n" +
		"    tls:\n" +
		"      cert: " + cert + "\n" +
		"      key: " + key + "\n" +
		"backend:\n" +
		"  address: 127.0.0.1:2526\n" +
		"  starttls: required\n" +
		"  tls_ca: " + ca + "\n" +
		"domains: [example.org]\n"
}

func TestTLSFiles(t *testing.T) {
	dir := t.TempDir()
	cert, key := writeCert(t, dir, "a")
	_, otherKey := writeCert(t, dir, "b")

	c, err := Parse("config.yaml", []byte(tlsConfig(cert, key, cert)))
	if err != nil {
		t.Fatalf("valid TLS config: %v", err)
	}
	if _, err := c.Listen[0].TLS.LoadCertificate(); err != nil {
		t.Errorf("LoadCertificate: %v", err)
	}
	if pool, err := c.Backend.RootCAs(); err != nil || pool == nil {
		t.Errorf("RootCAs = %v, %v; want a pool", pool, err)
	}

	// A key that does not match the certificate fails at the tls node.
	_, err = Parse("config.yaml", []byte(tlsConfig(cert, otherKey, cert)))
	if err == nil || !strings.HasPrefix(err.Error(), "config.yaml:5:7: listen[0].tls: cannot load certificate and key: ") {
		t.Errorf("mismatched key: got %v", err)
	}
	// A CA file without certificates is rejected at the tls_ca value.
	_, err = Parse("config.yaml", []byte(tlsConfig(cert, key, key)))
	if err == nil || err.Error() != `config.yaml:10:11: backend.tls_ca: cannot use "`+key+`": no PEM certificates found` {
		t.Errorf("bad CA file: got %v", err)
	}
}

func TestBackendKind(t *testing.T) {
	tests := []struct {
		address, network, addr string
	}{
		{address: "127.0.0.1:2526", network: "tcp", addr: "127.0.0.1:2526"},
		{address: "[::1]:24", network: "tcp", addr: "[::1]:24"},
		{address: "unix:/run/dovecot/lmtp", network: "unix", addr: "/run/dovecot/lmtp"},
		{address: "builtin:/tmp/mail", network: "builtin", addr: "/tmp/mail"},
	}
	for _, tt := range tests {
		n, a := Backend{Address: tt.address}.Kind()
		if n != tt.network || a != tt.addr {
			t.Errorf("Kind(%q) = %q, %q; want %q, %q", tt.address, n, a, tt.network, tt.addr)
		}
	}
}

func TestBackendDerivedDefaults(t *testing.T) {
	cfg := strings.Replace(issueExample, "  address: 127.0.0.1:2526\n",
		"  address: unix:/run/lmtp\n  protocol: lmtp\n  helo: relay.example.org\n", 1)
	c, err := Parse("config.yaml", []byte(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if c.Backend.HELO != "relay.example.org" || c.Backend.TLSServerName != "" || c.Backend.Protocol != "lmtp" {
		t.Errorf("backend = %+v", c.Backend)
	}
}

func TestNormalization(t *testing.T) {
	cfg := strings.Replace(issueExample, "domains: [example.org]", "domains: [Example.ORG, mail.example.net]", 1)
	cfg = strings.Replace(cfg, "servers: [127.0.0.1:5353]", `servers: [127.0.0.1, "::1", "[::1]:5353"]`, 1)
	c, err := Parse("config.yaml", []byte(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"example.org", "mail.example.net"}; !reflect.DeepEqual(c.Domains, want) {
		t.Errorf("domains = %q, want %q", c.Domains, want)
	}
	if want := []string{"127.0.0.1:53", "[::1]:53", "[::1]:5353"}; !reflect.DeepEqual(c.DNS.Servers, want) {
		t.Errorf("dns.servers = %q, want %q", c.DNS.Servers, want)
	}
	if !c.IsLocalDomain("EXAMPLE.org.") || c.IsLocalDomain("example.com") {
		t.Errorf("IsLocalDomain gives wrong answers for %q", c.Domains)
	}
}

func TestOptionalSectionsAndNulls(t *testing.T) {
	cfg := issueExample + `spool:
  dir: ""
  memory_threshold: 512KiB
log:
drain_timeout: 0s
spool_dir: ~
`
	_, err := Parse("config.yaml", []byte(cfg))
	if err == nil || !strings.Contains(err.Error(), `unknown key "spool_dir"`) {
		t.Fatalf("want unknown-key error even for a null value, got %v", err)
	}
	cfg = strings.Replace(cfg, "spool_dir: ~\n", "", 1)
	c, err := Parse("config.yaml", []byte(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if c.Spool.Dir != os.TempDir() || c.Spool.MemoryThreshold != 512*KiB {
		t.Errorf("spool = %+v", c.Spool)
	}
	if c.Log != (Log{Format: "text", Level: "info"}) || c.DrainTimeout.Duration != 0 {
		t.Errorf("log = %+v, drain_timeout = %v", c.Log, c.DrainTimeout)
	}
}

func TestSlogLevel(t *testing.T) {
	for level, want := range map[LogLevel]slog.Level{
		"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError, "": slog.LevelInfo,
	} {
		if got := (Log{Level: level}).SlogLevel(); got != want {
			t.Errorf("SlogLevel(%q) = %v, want %v", level, got, want)
		}
	}
}

func TestTrustedPrefixes(t *testing.T) {
	l := Listener{ProxyTrusted: []string{"10.0.0.0/8", "192.0.2.7", "2001:db8::1", "::ffff:192.0.2.8", "junk"}}
	var got []string
	for _, p := range l.TrustedPrefixes() {
		got = append(got, p.String())
	}
	want := []string{"10.0.0.0/8", "192.0.2.7/32", "2001:db8::1/128", "192.0.2.8/32"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("TrustedPrefixes = %q, want %q", got, want)
	}
}

func TestValidDomain(t *testing.T) {
	for s, want := range map[string]bool{
		"mx.example.org": true, "localhost": true, "xn--bcher-kva.example": true, "3com.com": true,
		"": false, "a..b": false, "-a.b": false, "a-.b": false, "a_b.c": false, "1.2.3.4": false,
		"example.org.": false, strings.Repeat("a", 64) + ".org": false, strings.Repeat("a.", 127) + "org": false,
	} {
		if got := confval.ValidDomain(s); got != want {
			t.Errorf("validDomain(%q) = %v, want %v", s, got, want)
		}
	}
}

var docBlock = regexp.MustCompile("(?s)```(yaml|text)\n(.*?)```")

// TestDocsExamples keeps docs/config.md honest: every complete YAML example
// (one that starts with hostname:) must load, and the sample error output
// must be what the loader really prints for the YAML block before it.
func TestDocsExamples(t *testing.T) {
	doc, err := os.ReadFile("../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := docBlock.FindAllStringSubmatch(string(doc), -1)
	complete, outputs := 0, 0
	for i, b := range blocks {
		switch {
		case b[1] == "yaml" && strings.HasPrefix(b[2], "hostname:"):
			complete++
			if _, err := Parse("docs.yaml", []byte(b[2])); err != nil {
				t.Errorf("docs example %d does not load:\n%s\n%v", i, b[2], err)
			}
		case b[1] == "text" && i > 0 && blocks[i-1][1] == "yaml":
			outputs++
			_, err := Parse("mxguard.yaml", []byte(blocks[i-1][2]))
			if err == nil || err.Error()+"\n" != b[2] {
				t.Errorf("docs sample output is stale\n--- docs\n%s--- actual\n%v", b[2], err)
			}
		}
	}
	if complete < 2 || outputs < 1 {
		t.Errorf("found %d complete examples and %d sample outputs in docs; the test is not checking anything", complete, outputs)
	}
}

// TestIsLocalDomainComparesNames: a configured domain (ASCII, so an
// internationalised one in A-labels) is local in its U-label spelling
// too, and a look-alike that only UTS #46 mapping makes equal is not.
func TestIsLocalDomainComparesNames(t *testing.T) {
	c := &Config{Domains: []string{"xn--bcher-kva.test", "example.org"}}
	for d, want := range map[string]bool{
		"xn--bcher-kva.test": true,
		"Bücher.test.":       true,
		"example.org":        true,
		"ｅｘａｍｐｌｅ.org":        false,
		"bucher.test":        false,
	} {
		if got := c.IsLocalDomain(d); got != want {
			t.Errorf("IsLocalDomain(%q) = %v, want %v", d, got, want)
		}
	}
}

// TestValidateOnlyValidates: normalize gives each value its one spelling,
// and validate then only reports: it changes nothing of the config.
func TestValidateOnlyValidates(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "r.yaml"), []byte("rules: []\n"), 0o600)
	src := "hostname: mx.example.org\nlisten: [{address: 127.0.0.1:2525}]\nbackend: {address: 127.0.0.1:2526}\n" +
		"domains: [Example.ORG]\ndns: {servers: [127.0.0.1]}\nheaders: {protected_domains: [Bank.Test.]}\nrules: [r.yaml]\n"
	c, err := Parse(filepath.Join(dir, "c.yaml"), []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if c.Domains[0] != "example.org" || c.DNS.Servers[0] != "127.0.0.1:53" || c.Headers.ProtectedDomains[0] != "bank.test" || c.Rules[0] != filepath.Join(dir, "r.yaml") {
		t.Fatalf("not normalized: %v %v %v %v", c.Domains, c.DNS.Servers, c.Headers.ProtectedDomains, c.Rules)
	}
	root, _ := yamlpos.ParseDocument("c.yaml", []byte(src))
	d := yamlpos.NewDecoder("c.yaml")
	raw := Default()
	d.Decode(root, raw)
	before, _ := yaml.Marshal(raw)
	validate(d, raw)
	if after, _ := yaml.Marshal(raw); string(after) != string(before) {
		t.Fatalf("validate changed the config:\n%s\nto\n%s", before, after)
	}
}

// TestSectionByCheckName: a check finds its config section under its own
// name, as the decoder filled it in.
func TestSectionByCheckName(t *testing.T) {
	cfg := Default()
	cfg.Headers.MaxFields = 77
	s, ok := cfg.Section("headers")
	if !ok || s.(headers.Config).MaxFields != 77 {
		t.Fatalf("Section(headers) = %#v, %v", s, ok)
	}
	if _, ok := cfg.Section("no-such-check"); ok {
		t.Fatal("a section that does not exist was found")
	}
}
