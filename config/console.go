package config

import (
	"crypto/tls"
	"net"
	"net/netip"

	"mxguard/internal/yamlpos"
)

// Console configures the web console (package console), off by default.
type Console struct {
	// Address (address, default "" = no console) is host:port to serve
	// the console on. A non-loopback address needs TLS.
	Address string `yaml:"address" expect:"host:port like 127.0.0.1:8025"`
	// UsersFile (users_file, required with an address) holds the
	// accounts, one "name:argon2id-hash" per line, written by mxguard
	// console adduser.
	UsersFile string `yaml:"users_file" expect:"a file path"`
	// TLS (tls, default nil) is the certificate the console is served
	// with; the session cookie is then Secure.
	TLS *TLS `yaml:"tls"`
	// Keep (keep, default 30d) is how long the console's index keeps
	// verdicts (the verdict log itself is rotated by the admin's tools).
	Keep Duration `yaml:"keep"`
}

// validateConsole checks the console section: the console reads the
// verdict log, and a password must not cross a network in clear.
func validateConsole(d *yamlpos.Decoder, c *Config) {
	con := &c.Console
	n := d.Node("console.address")
	if n == nil || con.Address == "" {
		return
	}
	host, _, err := net.SplitHostPort(con.Address)
	if err != nil {
		d.Errorf(n, "console.address: expected host:port like 127.0.0.1:8025, got %s", yamlpos.Lit(con.Address))
		return
	}
	if con.TLS == nil && !loopbackHost(host) {
		d.Errorf(n, "console.address: %s is not a loopback address: the console sends passwords and session cookies, so it needs console.tls there", yamlpos.Lit(con.Address))
	}
	if c.VerdictLog == "" || c.VerdictLog == "-" {
		d.Errorf(n, "console.address: the console shows the verdict log: set verdict_log to a file (it is %s)", yamlpos.Lit(c.VerdictLog))
	}
	if un := d.Node("console.users_file"); un == nil {
		d.Errorf(n, "console.users_file: expected the accounts file (write one with mxguard console adduser), got none")
	} else {
		checkFile(d, "console.users_file", con.UsersFile)
	}
	if tn := d.Node("console.tls"); tn != nil && con.TLS != nil {
		certOK := checkFile(d, "console.tls.cert", con.TLS.Cert)
		keyOK := checkFile(d, "console.tls.key", con.TLS.Key)
		if certOK && keyOK {
			if _, err := tls.LoadX509KeyPair(con.TLS.Cert, con.TLS.Key); err != nil {
				d.Errorf(tn, "console.tls: cannot load certificate and key: %v", err)
			}
		}
	}
}

// loopbackHost reports whether host is a loopback address or localhost.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}
