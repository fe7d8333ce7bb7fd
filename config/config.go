// Package config loads and validates mxguard's YAML configuration file.
//
// Loading is strict on purpose: mxguard sits in front of a mail server, and a
// misspelt key that silently falls back to a default (say, a typo in
// "max_message_bytes") is a security problem, not a cosmetic one. So unknown
// keys, wrong types, bad values and missing required keys are all errors, and
// every one of them is reported, each as "FILE:LINE:COL: what was expected",
// sorted by position. See docs/config.md for the keys and their defaults.
package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"mxguard/checks/check"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"mxguard/checks/clamav"
	"mxguard/checks/dnsbl"
	"mxguard/checks/greylist"
	"mxguard/checks/harvest"
	"mxguard/checks/headers"
	"mxguard/checks/mime"
	"mxguard/checks/rcpt"
	"mxguard/checks/resolver"
	"mxguard/checks/rspamd"
	"mxguard/checks/uribl"
	"mxguard/held"
	"mxguard/internal/boundedfile"
	"mxguard/internal/confval"
	"mxguard/internal/mailaddr"
	"mxguard/internal/yamlpos"
)

// PosError is one problem at a position in the configuration file, rendered
// as "FILE:LINE:COL: MSG". It is the positioned decoder's error type, shared
// with other YAML files mxguard reads (see mxguard/internal/yamlpos).
type PosError = yamlpos.PosError

// Config is the whole configuration file. Field comments give the YAML key
// and the default applied by Default and Parse.
type Config struct {
	// Hostname (hostname, required) is our own name, used in the SMTP
	// banner, our EHLO reply and the Received header we add.
	Hostname string `yaml:"hostname" required:"true" expect:"a domain name like mx.example.org"`
	// Listen (listen, required, at least one) are the sockets we accept
	// SMTP on.
	Listen []Listener `yaml:"listen" required:"true" expect:"a list of listeners"`
	// Backend (backend, required) is the mail server we relay to.
	Backend Backend `yaml:"backend" required:"true"`
	// Domains (domains, required, non-empty) are the recipient domains we
	// accept mail for, lower-cased by Parse.
	Domains []string `yaml:"domains" required:"true" expect:"a list of domain names"`
	// Postmaster (postmaster, default postmaster@ the first of Domains) is
	// where mail for <Postmaster>, which RFC 5321 §4.5.1 says is always
	// accepted, is forwarded: backends may refuse the form without a
	// domain. Its domain must be one of Domains.
	Postmaster string `yaml:"postmaster" expect:"an address like postmaster@example.org"`
	// DNS (dns) configures the resolver used for DNS-based checks.
	DNS DNS `yaml:"dns"`

	// DNSBL (dnsbl, default empty) lists the DNS block and allow lists
	// queried at connect; the entry's keys are in dnsbl.Config.
	DNSBL []dnsbl.Config `yaml:"dnsbl" expect:"a list of DNS lists"`

	// Recipients (recipients) configures recipient verification at RCPT;
	// its keys and defaults are in rcpt.Config.
	Recipients rcpt.Config `yaml:"recipients"`

	// Headers (headers) configures the header checks; its keys and
	// defaults are in headers.Config.
	Headers headers.Config `yaml:"headers"`

	// Greylist (greylist) configures greylisting at RCPT (off by
	// default); its keys and defaults are in greylist.Config.
	Greylist greylist.Config `yaml:"greylist"`
	// Harvest (harvest) sets the window over which a client's unknown
	// recipients are counted; its keys and defaults are in
	// harvest.Config.
	Harvest harvest.Config `yaml:"harvest"`

	// MIME (mime) bounds the MIME walk; its keys and defaults are in
	// mime.Config.
	MIME mime.Config `yaml:"mime"`

	// ClamAV (clamav) names the clamd that scans messages (off by
	// default); its keys and defaults are in clamav.Config.
	ClamAV clamav.Config `yaml:"clamav"`

	// URIBL (uribl) lists the URI block lists the message's URLs are
	// looked up in (off by default); its keys and defaults are in
	// uribl.Config.
	URIBL uribl.Config `yaml:"uribl"`

	// Rspamd (rspamd) names the rspamd that scores messages (off by
	// default); its keys and defaults are in rspamd.Config.
	Rspamd rspamd.Config `yaml:"rspamd"`

	// Metrics configures the Prometheus metrics and health endpoints.
	Metrics Metrics `yaml:"metrics"`
	// Console (console) is the web console, off by default; its keys are
	// in Console.
	Console Console `yaml:"console"`
	// VerdictLog (verdict_log, default "") is where one JSON line per
	// message verdict is appended: a path, "-" for stdout, "" to disable.
	VerdictLog string `yaml:"verdict_log" expect:"a file path, \"-\" or \"\""`
	// Spool (spool) controls where large messages are buffered.
	Spool Spool `yaml:"spool"`
	// Limits (limits) are the per-server and per-session resource limits.
	Limits Limits `yaml:"limits"`
	// DrainTimeout (drain_timeout, default 30s) is how long sessions in
	// flight may run after SIGTERM before they are cut off.
	DrainTimeout Duration `yaml:"drain_timeout"`
	// Log (log) configures mxguard's own diagnostic log.
	Log Log `yaml:"log"`
	// Rules (rules, default empty = the default rule set built into
	// mxguard) are the rules files, loaded in order by package rules.
	// Parse resolves relative paths against the directory of the config
	// file and checks that each names a regular file; it does not parse
	// them.
	Rules []string `yaml:"rules" expect:"a list of rules file paths"`

	// State (state) is where state that outlives a transaction is kept;
	// its keys are in State.
	State State `yaml:"state"`

	// Hold (hold) is the store of the mail rules hold; its keys and
	// defaults are in held.Config.
	Hold held.Config `yaml:"hold"`

	// AuthenticationResults adds an Authentication-Results header (RFC
	// 8601) with the SPF, DKIM and DMARC results to every accepted message,
	// so those checks run on every message whatever the rules need.
	AuthenticationResults bool `yaml:"authentication_results"`
}

// Listener is one listening socket.
type Listener struct {
	// Address (address, required) is host:port; an empty host means all
	// interfaces.
	Address string `yaml:"address" required:"true" expect:"an address like 127.0.0.1:2525"`
	// TLS (tls, default nil) is the certificate this listener offers to
	// clients via STARTTLS. Nil means the listener offers no TLS.
	TLS *TLS `yaml:"tls"`
	// ProxyProtocol (proxy_protocol, default false) makes the listener
	// expect a PROXY protocol v1/v2 header from a load balancer, so the
	// real client address is used for checks and logs.
	ProxyProtocol bool `yaml:"proxy_protocol"`
	// ProxyTrusted (proxy_trusted, required with proxy_protocol) lists the
	// CIDRs or IPs allowed to send a PROXY header.
	ProxyTrusted []string `yaml:"proxy_trusted" expect:"a list of CIDRs or IP addresses"`
}

// TLS names a certificate and its private key, both PEM files.
type TLS struct {
	// Cert (cert, required) is the certificate chain file.
	Cert string `yaml:"cert" required:"true" expect:"a file path"`
	// Key (key, required) is the private key file.
	Key string `yaml:"key" required:"true" expect:"a file path"`
}

// Protocol is what the backend speaks (backend.protocol).
type Protocol string

// The backend protocols.
const (
	ProtocolSMTP Protocol = "smtp"
	ProtocolLMTP Protocol = "lmtp" // RFC 2033
)

// EnumValues lists the protocols for the loader (yamlpos.Enum).
func (Protocol) EnumValues() []string { return confval.Values(ProtocolSMTP, ProtocolLMTP) }

// LogFormat is the form of the diagnostic log's lines (log.format).
type LogFormat string

// The log formats.
const (
	FormatText LogFormat = "text"
	FormatJSON LogFormat = "json"
)

// EnumValues lists the formats for the loader (yamlpos.Enum).
func (LogFormat) EnumValues() []string { return confval.Values(FormatText, FormatJSON) }

// LogLevel is the least severe diagnostic log line written (log.level).
type LogLevel string

// The log levels, slog's.
const (
	LevelDebug LogLevel = "debug"
	LevelInfo  LogLevel = "info"
	LevelWarn  LogLevel = "warn"
	LevelError LogLevel = "error"
)

// EnumValues lists the levels for the loader (yamlpos.Enum).
func (LogLevel) EnumValues() []string {
	return confval.Values(LevelDebug, LevelInfo, LevelWarn, LevelError)
}

// Backend is the downstream mail server, or the built-in sink.
type Backend struct {
	// Address (address, required) is "host:port", "unix:/path/to/socket"
	// or "builtin:DIR" (the development sink that writes each message to
	// a file in DIR). Use Kind to split it.
	Address string `yaml:"address" required:"true" expect:"host:port, unix:/path or builtin:DIR"`
	// Protocol (protocol, default smtp) is smtp or lmtp.
	Protocol Protocol `yaml:"protocol"`
	// HELO (helo, default = Hostname, filled in by Parse) is the name we
	// send in EHLO/LHLO.
	HELO string `yaml:"helo"`
	// StartTLS (starttls, default none) is none, opportunistic or required.
	StartTLS confval.StartTLSMode `yaml:"starttls"`
	// TLSServerName (tls_server_name, default = host part of a host:port
	// Address, filled in by Parse) is the name the backend certificate is
	// verified against.
	TLSServerName string `yaml:"tls_server_name"`
	// TLSCA (tls_ca, default "" = system roots) is a PEM file of CA
	// certificates to trust for the backend. See RootCAs.
	TLSCA string `yaml:"tls_ca" expect:"a file path"`
	// TLSSkipVerify (tls_skip_verify, default false) disables backend
	// certificate verification.
	TLSSkipVerify bool `yaml:"tls_skip_verify"`
	// ForwardClient (forward_client, default auto) is how the real client
	// is passed on: auto (XCLIENT if offered, else XFORWARD if offered,
	// else nothing), xclient, xforward or none.
	ForwardClient confval.HandOver `yaml:"forward_client"`
	// ConnectTimeout (connect_timeout, default 10s) bounds dialing.
	ConnectTimeout Duration `yaml:"connect_timeout"`
	// CommandTimeout (command_timeout, default 60s) bounds each reply.
	CommandTimeout Duration `yaml:"command_timeout"`
	// DataTimeout (data_timeout, default 5m) bounds the reply after DATA.
	DataTimeout Duration `yaml:"data_timeout"`
	// MaxIdleConnections (max_idle_connections, default 16, >= 0) is the
	// size of the pool of kept-alive backend connections.
	MaxIdleConnections int `yaml:"max_idle_connections"`
	// IdleTimeout (idle_timeout, default 60s) closes pooled connections
	// idle this long.
	IdleTimeout Duration `yaml:"idle_timeout"`
}

// DNS configures the resolver.
type DNS struct {
	// Servers (servers, default empty = /etc/resolv.conf) are IP:port
	// pairs; Parse appends :53 to bare IPs.
	Servers []string `yaml:"servers" expect:"a list of IP:port addresses"`
	// Timeout (timeout, default 2s) bounds each DNS query.
	Timeout Duration `yaml:"timeout"`
}

// PostmasterAddress is where mail for <Postmaster> goes: Postmaster, or
// postmaster@ the first of Domains.
func (c *Config) PostmasterAddress() string {
	if c.Postmaster != "" || len(c.Domains) == 0 {
		return c.Postmaster
	}
	return "postmaster@" + c.Domains[0]
}

// MaxHeaderBytes is the fixed limit on a message's header section
// (policy.MaxHeaderBytes): a longer one is refused with 552 whatever the
// rules say, so headers.max_bytes cannot be above it.
const MaxHeaderBytes = headers.MaxSectionBytes

// Spool controls buffering of message content.
type Spool struct {
	// Dir (dir, default os.TempDir()) is where messages larger than
	// MemoryThreshold are written. It must be an existing directory.
	Dir string `yaml:"dir" expect:"a directory path"`
	// MemoryThreshold (memory_threshold, default 1MiB) is how much of a
	// message is held in memory before spilling to a file.
	MemoryThreshold ByteSize `yaml:"memory_threshold"`
	// MemoryBudget (memory_budget, default 256MiB, >= memory_threshold)
	// bounds the message content held in memory by all sessions together;
	// past it, messages spill to Dir whatever their size.
	MemoryBudget ByteSize `yaml:"memory_budget"`
}

// Limits are resource limits; they exist so one client cannot exhaust the
// proxy or the backend.
type Limits struct {
	// MaxConnections (max_connections, default 10000, >= 1).
	MaxConnections int `yaml:"max_connections"`
	// MaxConnectionsPerIP (max_connections_per_ip, default 50, >= 1).
	MaxConnectionsPerIP int `yaml:"max_connections_per_ip"`
	// MaxMessageBytes (max_message_bytes, default 25MiB, >= 1024) is
	// advertised in EHLO SIZE and enforced on DATA.
	MaxMessageBytes ByteSize `yaml:"max_message_bytes"`
	// MaxRecipients (max_recipients, default 100, >= 1). RFC 5321 says
	// servers should accept at least 100.
	MaxRecipients int `yaml:"max_recipients"`
	// MaxErrors (max_errors, default 10, >= 1) is how many protocol errors
	// a session may make before it is closed with 421.
	MaxErrors int `yaml:"max_errors"`
	// MaxJunkCommands (max_junk_commands, default 100, >= 1) is how many
	// commands that move nothing forward (NOOP, RSET, VRFY, HELP) a session
	// may send before each further one counts as an error. ETRN, not
	// implemented, is an error at once.
	MaxJunkCommands int `yaml:"max_junk_commands"`
	// CommandTimeout (command_timeout, default 5m) is the time allowed to
	// receive one command line (RFC 5321 section 4.5.3.2).
	CommandTimeout Duration `yaml:"command_timeout"`
	// DataTimeout (data_timeout, default 10m) is the time allowed to
	// receive the whole message content.
	DataTimeout Duration `yaml:"data_timeout"`
	// CheckTimeout (check_timeout, default 10s) bounds each check (SPF,
	// DKIM, DMARC, DNSBL, recipient verification): one that has not
	// answered by then is temperror.
	CheckTimeout Duration `yaml:"check_timeout"`
	// GreetPause (greet_pause, default 0s) holds the banner back so that a
	// client that talks first shows itself (smtp.pregreet).
	GreetPause Duration `yaml:"greet_pause"`
	// Exempt (exempt, default loopback: 127.0.0.0/8 and ::1) lists the
	// clients (CIDRs or IPs) that the per-client rate limits and
	// max_connections_per_ip do not apply to, as Postfix exempts
	// $mynetworks (smtpd_client_event_limit_exceptions).
	Exempt []string `yaml:"exempt" expect:"a list of CIDRs or IP addresses"`
	// Rate limits connections, messages and recipients per client per
	// minute.
	Rate Rate `yaml:"rate"`
}

// Rate is the per-client rate limits; 0 turns one off. Each applies per
// client address and, NetFactor times larger, per /24 (IPv6 /64).
type Rate struct {
	ConnectionsPerMinute int `yaml:"connections_per_minute"`
	MessagesPerMinute    int `yaml:"messages_per_minute"`
	RecipientsPerMinute  int `yaml:"recipients_per_minute"`
	NetFactor            int `yaml:"net_factor"`
	MaxTracked           int `yaml:"max_tracked"`
}

// Metrics configures the HTTP endpoint with /metrics, /healthz and /readyz.
type Metrics struct {
	// Address is host:port to listen on; "" serves none.
	Address string `yaml:"address" expect:"an address like 127.0.0.1:9325"`
	// Pprof adds Go's /debug/pprof/ profiles to the endpoint, so that an
	// admin can see where a busy mxguard spends its time; off by default
	// because profiles reveal internals and cost CPU while taken.
	Pprof bool `yaml:"pprof"`
}

// Log configures mxguard's diagnostic log (not the verdict log).
type Log struct {
	// Format (format, default text) is text or json.
	Format LogFormat `yaml:"format"`
	// Level (level, default info) is debug, info, warn or error.
	Level LogLevel `yaml:"level"`
}

// Default returns a Config with every default applied and the required
// keys empty (Hostname "", no listeners, no backend address, no domains).
// Defaults that derive from other keys (Backend.HELO, Backend.TLSServerName)
// are left empty; Parse fills them in.
func Default() *Config {
	return &Config{
		Backend: Backend{
			Protocol:           ProtocolSMTP,
			StartTLS:           confval.StartTLSNone,
			ForwardClient:      confval.HandOverAuto,
			ConnectTimeout:     Dur(10 * time.Second),
			CommandTimeout:     Dur(60 * time.Second),
			DataTimeout:        Dur(5 * time.Minute),
			MaxIdleConnections: 16,
			IdleTimeout:        Dur(60 * time.Second),
		},
		DNS: DNS{
			Timeout: Dur(resolver.DefaultTimeout),
		},
		Spool: Spool{
			Dir:             os.TempDir(),
			MemoryThreshold: 1 * MiB,
			MemoryBudget:    256 * MiB,
		},
		Recipients: rcpt.DefaultConfig(),
		Headers:    headers.DefaultConfig(),
		MIME:       mime.DefaultConfig(),
		URIBL:      uribl.DefaultConfig(),
		Greylist:   greylist.DefaultConfig(),
		Harvest:    harvest.DefaultConfig(),
		Limits: Limits{
			Rate:                Rate{ConnectionsPerMinute: 200, MessagesPerMinute: 600, RecipientsPerMinute: 2000, NetFactor: 4, MaxTracked: 100000},
			MaxConnections:      10000,
			MaxConnectionsPerIP: 50,
			MaxMessageBytes:     25 * MiB,
			MaxRecipients:       100,
			MaxErrors:           10,
			MaxJunkCommands:     100,
			Exempt:              []string{"127.0.0.0/8", "::1"},
			CommandTimeout:      Dur(5 * time.Minute),
			DataTimeout:         Dur(10 * time.Minute),
			CheckTimeout:        Dur(check.DefaultTimeout),
		},
		DrainTimeout:          Dur(30 * time.Second),
		State:                 defaultState(),
		Console:               Console{Keep: Dur(30 * 24 * time.Hour)},
		Hold:                  held.DefaultConfig(),
		AuthenticationResults: true,
		Log: Log{
			Format: FormatText,
			Level:  LevelInfo,
		},
	}
}

// Errors is the list of problems found in a configuration file. Parse and
// Load return it as *Errors; use errors.As to get at the individual
// *PosError values.
type Errors []error

// Error joins the problems, one per line.
func (e Errors) Error() string {
	lines := make([]string, len(e))
	for i, err := range e {
		lines[i] = err.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.Is and errors.As see the individual problems.
func (e Errors) Unwrap() []error {
	return e
}

// maxConfigBytes bounds the configuration file.
const maxConfigBytes = 4 << 20

// Load reads and parses the configuration file at path. On failure the
// error is an *Errors. Relative file paths inside the config (certificates,
// CA file, spool directory) are checked relative to the current directory,
// which is also how mxguard opens them later. Relative rules file paths are
// the exception: they are relative to the directory of the config file, and
// Parse stores them resolved.
func Load(path string) (*Config, error) {
	data, err := boundedfile.Read(path, maxConfigBytes)
	if err != nil {
		return nil, &Errors{fmt.Errorf("cannot read configuration: %w", err)}
	}
	return Parse(path, data)
}

// Parse parses and validates configuration data; file is the name used in
// error messages, and filepath.Dir(file) is the directory relative rules
// paths are resolved against. On failure the error is an *Errors listing
// every problem sorted by position and the Config is nil.
func Parse(file string, data []byte) (*Config, error) {
	root, perr := yamlpos.ParseDocument(file, data)
	if perr != nil {
		return nil, &Errors{perr}
	}
	if root == nil {
		return nil, &Errors{emptyError(file)}
	}
	d := yamlpos.NewDecoder(file)
	cfg := Default()
	d.Decode(root, cfg)
	normalize(cfg, filepath.Dir(file))
	validate(d, cfg)
	if errs := d.Errors(); len(errs) > 0 {
		e := Errors(errs)
		return nil, &e
	}
	return cfg, nil
}

func emptyError(file string) error {
	return &PosError{File: file, Line: 1, Column: 1, Msg: "empty configuration (expected a mapping with at least hostname, listen, backend and domains)"}
}

// Kind splits Address into a network and an address: ("tcp", "host:port"),
// ("unix", "/path/to/socket") or ("builtin", "DIR").
func (b Backend) Kind() (network, addr string) {
	if p, ok := strings.CutPrefix(b.Address, "unix:"); ok {
		return "unix", p
	}
	if p, ok := strings.CutPrefix(b.Address, "builtin:"); ok {
		return "builtin", p
	}
	return "tcp", b.Address
}

// RootCAs returns the pool of CAs to verify the backend against: nil (the
// system roots) when TLSCA is empty, else the certificates in that file.
func (b Backend) RootCAs() (*x509.CertPool, error) {
	if b.TLSCA == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(b.TLSCA)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificates found", b.TLSCA)
	}
	return pool, nil
}

// LoadCertificate loads the certificate and key. Parse has already checked
// they load, but callers load again at listen time (and on reload) so the
// files in use are the current ones.
func (t TLS) LoadCertificate() (tls.Certificate, error) {
	return tls.LoadX509KeyPair(t.Cert, t.Key)
}

// TrustedPrefixes returns ProxyTrusted as prefixes, a bare IP becoming a
// single-address prefix. Parse has validated the entries, so invalid ones
// (possible only in a hand-built Config) are skipped. Empty means any peer.
func (l Listener) TrustedPrefixes() []netip.Prefix {
	return Prefixes(l.ProxyTrusted)
}

// Prefixes returns a validated list of CIDRs and IPs as prefixes, a bare
// IP becoming a one-address prefix.
func Prefixes(list []string) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
		} else if a, err := netip.ParseAddr(s); err == nil {
			a = a.Unmap()
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return out
}

// IsLocalDomain reports whether domain is one of Domains, compared as
// names (mailaddr.Domain: any case, optional trailing dot, U-labels or
// A-labels).
func (c *Config) IsLocalDomain(domain string) bool {
	n := mailaddr.ParseDomain(domain)
	for _, d := range c.Domains {
		if mailaddr.ParseDomain(d).Equal(n) {
			return true
		}
	}
	return false
}

// SlogLevel maps Level to a slog.Level; unknown values mean info.
func (l Log) SlogLevel() slog.Level {
	switch l.Level {
	case LevelDebug:
		return slog.LevelDebug
	case LevelWarn:
		return slog.LevelWarn
	case LevelError:
		return slog.LevelError
	}
	return slog.LevelInfo
}

// splitHostPort is net.SplitHostPort plus a numeric port in 1-65535.
func splitHostPort(s string) (host string, port int, err error) {
	host, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, err
	}
	port, err = strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("port %q is not a number in 1-65535", p)
	}
	return host, port, nil
}

// Section returns the value of the top-level section whose key is name
// (dnsbl, headers, …), for the check of that name: a check's config
// section is the field of Config with the check's name as its key.
func (c *Config) Section(name string) (any, bool) {
	v := reflect.ValueOf(c).Elem()
	t := v.Type()
	for i := range t.NumField() {
		if key, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); key == name {
			return v.Field(i).Interface(), true
		}
	}
	return nil, false
}
