package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"time"

	"mxguard/internal/boundedfile"
	"mxguard/internal/yamlpos"
)

// State configures where the state that outlives a transaction is kept
// (rate limits' buckets, the greylist, the recipient cache): the embedded
// store in Dir, or Redis, shared by every instance of a fleet.
type State struct {
	// Dir (dir, default $STATE_DIRECTORY, else /var/lib/mxguard) holds the embedded store's file
	// (state.db) and the admin's control socket (control.sock). serve
	// creates it when missing.
	Dir string `yaml:"dir" expect:"a directory path"`
	// MaxEntries (max_entries, default 100000, >= 1) bounds the entries
	// the embedded store (and, with Redis, the local fallback) keeps; the
	// least recently used go first.
	MaxEntries int `yaml:"max_entries"`
	// Redis (redis, default none = the embedded store), when present, is
	// the Redis every instance shares.
	Redis *StateRedis `yaml:"redis"`
}

// StateRedis is the Redis a fleet shares.
type StateRedis struct {
	// Address (address, required) is host:port.
	Address string `yaml:"address" required:"true" expect:"host:port like 127.0.0.1:6379"`
	// PasswordFile (password_file, default none) holds the password (its
	// first line); a file, so that the password is not in the config.
	PasswordFile string `yaml:"password_file" expect:"a file path"`
	// TLS (tls, default none = plain TCP) makes the connection TLS.
	TLS *StateRedisTLS `yaml:"tls"`
	// KeyPrefix (key_prefix, default "mxguard:") is put before every key,
	// so that one Redis can serve several deployments.
	KeyPrefix string `yaml:"key_prefix"`
	// Timeout (timeout, default 500ms, at most 5s) bounds dialing and each
	// operation: past it this instance answers from its own memory, so a
	// slow Redis does not hold mail.
	Timeout Duration `yaml:"timeout"`
}

// StateRedisTLS is the TLS towards Redis.
type StateRedisTLS struct {
	// CA (ca, default "" = the system roots) is a PEM file of the CAs
	// that Redis's certificate is verified against.
	CA string `yaml:"ca" expect:"a file path"`
	// ServerName (server_name, default the host of address) is the name
	// Redis's certificate is verified against.
	ServerName string `yaml:"server_name"`
}

// DefaultStateDir is state.dir's default.
const DefaultStateDir = "/var/lib/mxguard"

// defaultRedisTimeout is state.redis.timeout's default; maxRedisTimeout its
// bound (mail waits for it at every stage that needs state).
const (
	defaultRedisTimeout = 500 * time.Millisecond
	maxRedisTimeout     = 5 * time.Second
	maxPasswordBytes    = 4096
)

// defaultStateDir is state.dir's default: the directory systemd made for
// the service (StateDirectory= sets $STATE_DIRECTORY, a colon-separated
// list whose first is the service's), else DefaultStateDir.
func defaultStateDir() string {
	if d, _, _ := strings.Cut(os.Getenv("STATE_DIRECTORY"), ":"); d != "" {
		return d
	}
	return DefaultStateDir
}

func defaultState() State {
	return State{Dir: defaultStateDir(), MaxEntries: 100000}
}

// normalizeState fills in the Redis defaults that apply once the section
// is there.
func normalizeState(s *State) {
	if s.Dir == "" {
		s.Dir = defaultStateDir()
	}
	r := s.Redis
	if r == nil {
		return
	}
	if r.KeyPrefix == "" {
		r.KeyPrefix = "mxguard:"
	}
	if r.Timeout.Duration == 0 {
		r.Timeout = Dur(defaultRedisTimeout)
	}
	if r.TLS != nil && r.TLS.ServerName == "" {
		if host, _, err := splitHostPort(r.Address); err == nil {
			r.TLS.ServerName = host
		}
	}
}

func validateState(d *yamlpos.Decoder, s *State) {
	if n := d.Node("state.dir"); n != nil {
		if fi, err := os.Stat(s.Dir); err == nil && !fi.IsDir() {
			d.Errorf(n, "state.dir: expected a directory, got %q which is not one", s.Dir)
		}
	}
	if n := d.Node("state.max_entries"); n != nil && s.MaxEntries < 1 {
		d.Errorf(n, "state.max_entries: expected an integer >= 1, got %d", s.MaxEntries)
	}
	r := s.Redis
	if r == nil {
		return
	}
	if n := d.Node("state.redis.address"); n != nil {
		if err := checkHostPort(r.Address, false); err != nil {
			d.Errorf(n, "state.redis.address: expected host:port like 127.0.0.1:6379, got %q (%v)", r.Address, err)
		}
	}
	if d.Node("state.redis.password_file") != nil {
		checkFile(d, "state.redis.password_file", r.PasswordFile)
	}
	if r.TLS != nil && d.Node("state.redis.tls.ca") != nil && r.TLS.CA != "" {
		if checkFile(d, "state.redis.tls.ca", r.TLS.CA) {
			if _, err := r.rootCAs(); err != nil {
				d.Errorf(d.Node("state.redis.tls.ca"), "state.redis.tls.ca: %v", err)
			}
		}
	}
	if n := d.Node("state.redis.timeout"); n != nil {
		// Read from the file: normalizeState took a written 0 for unset.
		if t, err := time.ParseDuration(n.Value); err == nil && (t <= 0 || t > maxRedisTimeout) {
			d.Errorf(n, "state.redis.timeout: expected a duration greater than 0 and at most %s, got %s", maxRedisTimeout, yamlpos.Lit(n.Value))
		}
	}
}

func (r *StateRedis) rootCAs() (*x509.CertPool, error) {
	if r.TLS == nil || r.TLS.CA == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(r.TLS.CA)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificates found", r.TLS.CA)
	}
	return pool, nil
}

// TLSConfig returns the TLS configuration towards Redis, nil for plain
// TCP.
func (r *StateRedis) TLSConfig() (*tls.Config, error) {
	if r.TLS == nil {
		return nil, nil
	}
	pool, err := r.rootCAs()
	if err != nil {
		return nil, fmt.Errorf("state.redis.tls.ca: %w", err)
	}
	return &tls.Config{RootCAs: pool, ServerName: r.TLS.ServerName, MinVersion: tls.VersionTLS12}, nil
}

// Password reads the password from PasswordFile ("" when none): its first
// line, without the line end.
func (r *StateRedis) Password() (string, error) {
	if r.PasswordFile == "" {
		return "", nil
	}
	b, err := boundedfile.Read(r.PasswordFile, maxPasswordBytes)
	if err != nil {
		return "", fmt.Errorf("state.redis.password_file: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSuffix(line, "\r"), nil
}
