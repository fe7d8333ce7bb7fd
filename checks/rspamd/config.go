package rspamd

// The rspamd section of the configuration file. It is declared here,
// beside the check it configures, and the config package holds a field of
// this type and calls Validate; this package does not import config.

import (
	"strings"

	"mxguard/internal/confval"
	"mxguard/internal/yamlpos"
)

// Config is the rspamd section.
type Config struct {
	// URL (url, default "" = no scan) is the base URL of rspamd's normal
	// worker (its bind_socket, port 11333 by default), such as
	// "http://127.0.0.1:11333"; the check posts to its /checkv2.
	URL string `yaml:"url" expect:"a URL like http://127.0.0.1:11333"`
	// Timeout (timeout, default 0s = limits.check_timeout) bounds a scan,
	// from the connection to rspamd's answer, when it needs longer than
	// the other checks (rspamd's own DNS lookups on a large message).
	Timeout confval.Duration `yaml:"timeout"`
}

// Validate reports, through d and at each key's position, the problems of
// the section decoded at path ("rspamd"). It changes nothing. (A negative
// timeout is refused when it is decoded.)
func (c *Config) Validate(d *yamlpos.Decoder, path string) {
	if n := d.Node(path + ".url"); n != nil && c.URL != "" {
		if _, err := ParseURL(c.URL); err != nil {
			d.Errorf(n, "%s.url: expected a URL like http://127.0.0.1:11333 (http or https, with a host), got %s: %s",
				path, yamlpos.Lit(c.URL), msgOf(err))
		}
	}
}

// msgOf is err's text without the package prefix and the quoted value the
// caller already shows.
func msgOf(err error) string {
	s := strings.TrimPrefix(err.Error(), "rspamd: ")
	if _, rest, ok := strings.Cut(s, ": "); ok {
		return rest
	}
	return s
}
