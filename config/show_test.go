package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"mxguard/checks/dnsbl"
)

// showConfigs are configurations that together set every kind of key: a
// minimal one, the issue's, and one with TLS, PROXY, lists, rules and
// recipients files and derived defaults overridden.
func showConfigs(t *testing.T, dir string) map[string]string {
	t.Helper()
	cert, key := writeCert(t, dir, "a")
	if err := os.WriteFile(filepath.Join(dir, "local.yaml"), []byte("rules: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rcpts := filepath.Join(dir, "recipients")
	if err := os.WriteFile(rcpts, []byte("user@example.org\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"minimal": "hostname: mx.example.org\nlisten:\n  - address: 127.0.0.1:2525\nbackend:\n  address: 127.0.0.1:2526\ndomains: [example.org]\n",
		"issue":   issueExample,
		"full": `hostname: MX.example.org
listen:
  - address: 127.0.0.1:2525
    tls: {cert: ` + cert + `, key: ` + key + `}
  - address: "[::1]:2525"
    proxy_protocol: true
    proxy_trusted: [10.0.0.0/8, 192.0.2.1]
backend:
  address: 127.0.0.1:2526
  helo: relay.example.org
  tls_server_name: backend.example.org
  starttls: required
  tls_ca: ` + cert + `
  connect_timeout: 90s
  idle_timeout: 2h
domains: [Example.ORG, example.net]
postmaster: hostmaster@example.net
dns:
  servers: [127.0.0.1, "[::1]:5353"]
  timeout: 1500ms
dnsbl:
  - zone: bl.example.net
    weight: 2.5
    codes: 127.0.0.2-127.0.0.11
  - zone: white.example.net
    weight: -10
recipients:
  verify: file
  file: ` + rcpts + `
headers:
  protected_domains: [Bank.example]
  max_bytes: 100000
metrics:
  address: 127.0.0.1:9325
  pprof: true
verdict_log: "-"
spool:
  dir: ` + dir + `
  memory_threshold: 0
limits:
  max_message_bytes: 10MB
  greet_pause: 3s
  exempt: []
  rate:
    connections_per_minute: 0
drain_timeout: 0s
log: {format: json, level: debug}
rules: [local.yaml]
authentication_results: false
`,
	}
}

// TestShowRoundTrip: what Marshal and MarshalChanged print is a
// configuration that Parse reads back to the very same Config, and never
// holds the contents of a certificate or key file.
func TestShowRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for name, text := range showConfigs(t, dir) {
		t.Run(name, func(t *testing.T) {
			file := filepath.Join(dir, "mxguard.yaml")
			c, err := Parse(file, []byte(text))
			if err != nil {
				t.Fatal(err)
			}
			for what, marshal := range map[string]func(*Config) ([]byte, error){"Marshal": Marshal, "MarshalChanged": MarshalChanged} {
				out, err := marshal(c)
				if err != nil {
					t.Fatal(err)
				}
				if strings.Contains(string(out), "BEGIN") {
					t.Errorf("%s prints key material:\n%s", what, out)
				}
				back, err := Parse(filepath.Join(t.TempDir(), "shown.yaml"), out)
				if err != nil {
					t.Fatalf("%s output does not parse:\n%s\n%v", what, out, err)
				}
				if !reflect.DeepEqual(emptyAsNil(back), emptyAsNil(c)) {
					t.Errorf("%s output parses to another config:\n%s\nwant %+v\n got %+v", what, out, c, back)
				}
			}
		})
	}
}

// emptyAsNil returns a copy of c with every empty list made nil: "[]" and
// a key left out mean the same, and Parse keeps the difference.
func emptyAsNil(c *Config) *Config {
	cp := *c
	cp.Listen = append([]Listener(nil), c.Listen...)
	cp.DNSBL = append([]dnsbl.Config(nil), c.DNSBL...)
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.Pointer:
			if !v.IsNil() {
				walk(v.Elem())
			}
		case reflect.Struct:
			for i := 0; i < v.NumField(); i++ {
				walk(v.Field(i))
			}
		case reflect.Slice:
			if v.Len() == 0 {
				v.Set(reflect.Zero(v.Type()))
			}
			for i := 0; i < v.Len(); i++ {
				walk(v.Index(i))
			}
		}
	}
	walk(reflect.ValueOf(&cp).Elem())
	return &cp
}

// TestMarshalChanged: only what differs from the defaults is printed, a
// derived default (backend.helo = hostname) counts as a default, and a
// setting written with its default value is not printed.
func TestMarshalChanged(t *testing.T) {
	text := showConfigs(t, t.TempDir())["minimal"] + "limits:\n  max_recipients: 100\n  max_errors: 3\n  rate: {net_factor: 8}\n"
	text = strings.Replace(text, "  address: 127.0.0.1:2526\n", "  address: 127.0.0.1:2526\n  helo: mx.example.org\n  idle_timeout: 60s\n", 1)
	c, err := Parse("mxguard.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	out, err := MarshalChanged(c)
	if err != nil {
		t.Fatal(err)
	}
	want := `hostname: mx.example.org
listen:
  - address: 127.0.0.1:2525
backend:
  address: 127.0.0.1:2526
domains:
  - example.org
limits:
  max_errors: 3
  rate:
    net_factor: 8
`
	if string(out) != want {
		t.Errorf("MarshalChanged:\n%s\nwant:\n%s", out, want)
	}
}

// TestMarshalDefaults: the defaults print as YAML that decodes, every key
// of Config with its default, the required ones marked.
func TestMarshalDefaults(t *testing.T) {
	out, err := MarshalDefaults()
	if err != nil {
		t.Fatal(err)
	}
	var n yaml.Node
	if err := yaml.Unmarshal(out, &n); err != nil {
		t.Fatalf("not YAML: %v\n%s", err, out)
	}
	for _, line := range []string{
		`hostname: "" # required`, "listen: [] # required", `  address: "" # required`, "domains: [] # required",
		"  max_message_bytes: 25MiB", "  command_timeout: 5m", "drain_timeout: 30s", "authentication_results: true",
		"rules: [] # the built-in default rules", "  forward_client: auto", "    - ::1",
	} {
		if !strings.Contains(string(out), line+"\n") {
			t.Errorf("no line %q in:\n%s", line, out)
		}
	}
	// With the required keys filled in, the defaults are a configuration
	// that parses to Default() plus those keys.
	filled := strings.NewReplacer(`hostname: "" # required`, "hostname: mx.example.org",
		"listen: [] # required", "listen: [{address: 127.0.0.1:2525}]",
		`  address: "" # required`, "  address: 127.0.0.1:2526",
		"domains: [] # required", "domains: [example.org]").Replace(string(out))
	c, err := Parse("defaults.yaml", []byte(filled))
	if err != nil {
		t.Fatalf("%v\n%s", err, filled)
	}
	if changed, _ := MarshalChanged(c); string(changed) != "hostname: mx.example.org\nlisten:\n  - address: 127.0.0.1:2525\nbackend:\n  address: 127.0.0.1:2526\ndomains:\n  - example.org\n" {
		t.Errorf("the printed defaults are not the defaults; what differs:\n%s", changed)
	}
}
