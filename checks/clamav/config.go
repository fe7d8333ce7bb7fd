package clamav

// The clamav section of the configuration file. It is declared here,
// beside the check it configures, and the config package holds a field of
// this type and calls Validate; this package does not import config.

import (
	"strings"

	"mxguard/internal/confval"
	"mxguard/internal/yamlpos"
)

// Config is the clamav section.
type Config struct {
	// Address (address, default "" = no scan) is clamd's socket:
	// "unix:/run/clamav/clamd.ctl" (clamd.conf's LocalSocket) or
	// "127.0.0.1:3310" (TCPAddr, TCPSocket).
	Address string `yaml:"address" expect:"unix:/path/to/clamd.ctl or host:port"`
	// Timeout (timeout, default 0s = limits.check_timeout) bounds a scan, from the connection to clamd's answer, when it
	// needs longer than the other checks (a message near
	// limits.max_message_bytes on a busy clamd).
	Timeout confval.Duration `yaml:"timeout"`
}

// Validate reports, through d and at each key's position, the problems of
// the section decoded at path ("clamav"). It changes nothing. (A negative
// timeout is refused when it is decoded.)
func (c *Config) Validate(d *yamlpos.Decoder, path string) {
	if n := d.Node(path + ".address"); n != nil && c.Address != "" {
		if _, _, err := ParseAddress(c.Address); err != nil {
			d.Errorf(n, "%s.address: expected unix:/path/to/clamd.ctl (an absolute path) or host:port like 127.0.0.1:3310, got %s: %s",
				path, yamlpos.Lit(c.Address), msgOf(err))
		}
	}
}

// msgOf is err's text without the package prefix and the quoted value the
// caller already shows.
func msgOf(err error) string {
	s := strings.TrimPrefix(err.Error(), "clamav: ")
	if _, rest, ok := strings.Cut(s, ": "); ok {
		return rest
	}
	return s
}
