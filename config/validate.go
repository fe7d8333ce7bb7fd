package config

// Semantic checks that struct tags cannot express. Each check runs only when
// the key was written in the file and decoded cleanly (d.Node(path) != nil):
// defaults are valid by construction, and a value that failed to decode has
// already been reported, so checking it again would only add noise.

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"

	"mxguard/internal/confval"
	"mxguard/internal/yamlpos"
)

func validate(d *yamlpos.Decoder, c *Config) {
	if n := d.Node("hostname"); n != nil && !confval.ValidDomain(c.Hostname) {
		d.Errorf(n, "hostname: expected a domain name like mx.example.org, got %q", c.Hostname)
	}
	validateListen(d, c)
	validateBackend(d, &c.Backend)
	validateDomains(d, c)
	validatePostmaster(d, c)
	validateDNS(d, &c.DNS)
	validateRules(d, c)
	validateState(d, &c.State)
	if n := d.Node("spool.dir"); n != nil {
		if fi, err := os.Stat(c.Spool.Dir); err != nil {
			d.Errorf(n, "spool.dir: expected an existing directory, got %q (%v)", c.Spool.Dir, unwrapPath(err))
		} else if !fi.IsDir() {
			d.Errorf(n, "spool.dir: expected an existing directory, got %q which is not a directory", c.Spool.Dir)
		}
	}
	if n := d.Node("spool.memory_budget"); n != nil && c.Spool.MemoryBudget < c.Spool.MemoryThreshold {
		// A budget smaller than one message's share would spill every
		// message that memory_threshold says may stay in memory.
		d.Errorf(n, "spool.memory_budget: expected a size >= spool.memory_threshold (%d), got %s", c.Spool.MemoryThreshold, yamlpos.Lit(n.Value))
	}
	l := &c.Limits
	confval.AtLeast(d, "limits.max_connections", "an integer", int64(l.MaxConnections), 1)
	confval.AtLeast(d, "limits.max_connections_per_ip", "an integer", int64(l.MaxConnectionsPerIP), 1)
	confval.AtLeast(d, "limits.max_message_bytes", "a size in bytes", int64(l.MaxMessageBytes), 1024)
	confval.AtLeast(d, "limits.max_recipients", "an integer", int64(l.MaxRecipients), 1)
	confval.AtLeast(d, "limits.max_errors", "an integer", int64(l.MaxErrors), 1)
	confval.AtLeast(d, "limits.max_junk_commands", "an integer", int64(l.MaxJunkCommands), 1)
	confval.Positive(d, "limits.command_timeout", l.CommandTimeout)
	confval.Positive(d, "limits.data_timeout", l.DataTimeout)
	confval.Positive(d, "limits.check_timeout", l.CheckTimeout)
	for j, s := range l.Exempt {
		ep := fmt.Sprintf("limits.exempt[%d]", j)
		if n := d.Node(ep); n != nil {
			if ok, hint := checkPrefix(s); !ok {
				d.Errorf(n, "%s: expected a CIDR like 10.0.0.0/8 or an IP address, got %q%s", ep, s, hint)
			}
		}
	}
	confval.AtLeast(d, "limits.rate.connections_per_minute", "an integer", int64(l.Rate.ConnectionsPerMinute), 0)
	confval.AtLeast(d, "limits.rate.messages_per_minute", "an integer", int64(l.Rate.MessagesPerMinute), 0)
	confval.AtLeast(d, "limits.rate.recipients_per_minute", "an integer", int64(l.Rate.RecipientsPerMinute), 0)
	confval.AtLeast(d, "limits.rate.net_factor", "an integer", int64(l.Rate.NetFactor), 1)
	confval.AtLeast(d, "limits.rate.max_tracked", "an integer", int64(l.Rate.MaxTracked), 1)
	for i := range c.DNSBL {
		c.DNSBL[i].Validate(d, fmt.Sprintf("dnsbl[%d]", i))
	}
	c.Recipients.Validate(d, "recipients")
	c.Headers.Validate(d, "headers")
	c.MIME.Validate(d, "mime")
	c.Greylist.Validate(d, "greylist")
	c.Harvest.Validate(d, "harvest")
	c.ClamAV.Validate(d, "clamav")
	c.URIBL.Validate(d, "uribl")
	c.Rspamd.Validate(d, "rspamd")
	c.Hold.Validate(d, "hold")
	if n := d.Node("metrics.address"); n != nil && c.Metrics.Address != "" {
		if _, _, err := net.SplitHostPort(c.Metrics.Address); err != nil {
			d.Errorf(n, "metrics.address: expected host:port like 127.0.0.1:9325, got %s", yamlpos.Lit(c.Metrics.Address))
		}
	}
	if n := d.Node("metrics.pprof"); n != nil && c.Metrics.Pprof && c.Metrics.Address == "" {
		d.Errorf(n, "metrics.pprof: profiles are served on metrics.address, which is not set")
	}
	validateConsole(d, c)
	// drain_timeout may be 0: "stop immediately" is a legitimate choice.
}

func validateListen(d *yamlpos.Decoder, c *Config) {
	if n := d.Node("listen"); n != nil && len(c.Listen) == 0 {
		d.Errorf(n, "listen: expected at least one listener")
	}
	seen := map[string]string{}
	for i := range c.Listen {
		l := &c.Listen[i]
		p := fmt.Sprintf("listen[%d]", i)
		if n := d.Node(p + ".address"); n != nil {
			if err := checkHostPort(l.Address, true); err != nil {
				d.Errorf(n, "%s.address: expected host:port like 127.0.0.1:2525, got %q (%v)", p, l.Address, err)
			} else if first, dup := seen[l.Address]; dup {
				d.Errorf(n, "%s.address: %q is already used by %s", p, l.Address, first)
			} else {
				seen[l.Address] = p
			}
		}
		if tn := d.Node(p + ".tls"); tn != nil && l.TLS != nil {
			certOK := checkFile(d, p+".tls.cert", l.TLS.Cert)
			keyOK := checkFile(d, p+".tls.key", l.TLS.Key)
			if certOK && keyOK {
				if _, err := tls.LoadX509KeyPair(l.TLS.Cert, l.TLS.Key); err != nil {
					d.Errorf(tn, "%s.tls: cannot load certificate and key: %v", p, err)
				}
			}
		}
		if n := d.Node(p + ".proxy_protocol"); n != nil && l.ProxyProtocol && len(l.ProxyTrusted) == 0 {
			// Without a list, any peer could claim any client address and
			// walk past every per-client check; an admin who means that
			// says so with 0.0.0.0/0 and ::/0.
			d.Errorf(n, "%s.proxy_trusted: expected the load balancers allowed to send a PROXY header (CIDRs or IPs; 0.0.0.0/0 and ::/0 for any peer), got none", p)
		}
		for j, s := range l.ProxyTrusted {
			ep := fmt.Sprintf("%s.proxy_trusted[%d]", p, j)
			if n := d.Node(ep); n != nil {
				if ok, hint := checkPrefix(s); !ok {
					d.Errorf(n, "%s: expected a CIDR like 10.0.0.0/8 or an IP address, got %q%s", ep, s, hint)
				}
			}
		}
	}
}

// checkFile reports whether path names a readable regular file, reporting
// at the key's node if not. Empty paths and missing nodes return false.
func checkFile(d *yamlpos.Decoder, key, path string) bool {
	n := d.Node(key)
	if n == nil {
		return false
	}
	if path == "" {
		d.Errorf(n, "%s: expected a file path, got \"\"", key)
		return false
	}
	fi, err := os.Stat(path)
	if err != nil {
		d.Errorf(n, "%s: cannot use %q: %v", key, path, unwrapPath(err))
		return false
	}
	if !fi.Mode().IsRegular() {
		d.Errorf(n, "%s: cannot use %q: not a regular file", key, path)
		return false
	}
	return true
}

// unwrapPath drops the "stat PATH: " prefix of an *os.PathError, since our
// messages quote the path already.
func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// checkPrefix accepts an IP or a CIDR without host bits. "10.0.0.1/8" is
// rejected because it usually means a typo for /32 or for 10.0.0.0/8, and
// guessing which is how a trust list ends up trusting the wrong peers. The
// hint, if any, is a suffix for the error message.
func checkPrefix(s string) (ok bool, hint string) {
	if _, err := netip.ParseAddr(s); err == nil {
		return true, ""
	}
	pfx, err := netip.ParsePrefix(s)
	if err != nil {
		return false, ""
	}
	if pfx.Masked() != pfx {
		return false, fmt.Sprintf(" (host bits set; did you mean %s?)", pfx.Masked())
	}
	return true, ""
}

// checkHostPort validates "host:port". The host must be an IP or a domain
// name, and may be empty only for listeners (all interfaces).
func checkHostPort(s string, emptyHostOK bool) error {
	host, _, err := splitHostPort(s)
	if err != nil {
		return unwrapAddr(err)
	}
	if host == "" {
		if emptyHostOK {
			return nil
		}
		return fmt.Errorf("missing host")
	}
	if _, err := netip.ParseAddr(host); err != nil && !confval.ValidDomain(host) {
		return fmt.Errorf("host %q is neither an IP address nor a domain name", host)
	}
	return nil
}

// unwrapAddr drops the "address X: " prefix of a *net.AddrError, since our
// messages quote the address already.
func unwrapAddr(err error) error {
	var ae *net.AddrError
	if errors.As(err, &ae) {
		return errors.New(ae.Err)
	}
	return err
}

func validateBackend(d *yamlpos.Decoder, b *Backend) {
	if n := d.Node("backend.address"); n != nil {
		network, addr := b.Kind()
		const want = "backend.address: expected host:port, unix:/path/to/socket or builtin:DIR, got %q"
		switch network {
		case "unix":
			if addr == "" {
				d.Errorf(n, want+" (empty socket path)", b.Address)
			}
		case "builtin":
			if addr == "" {
				d.Errorf(n, want+" (empty directory)", b.Address)
			}
		default:
			if err := checkHostPort(addr, false); err != nil {
				d.Errorf(n, want+" (%v)", b.Address, err)
			}
		}
	}
	if n := d.Node("backend.helo"); n != nil && b.HELO != "" && !confval.ValidDomain(b.HELO) && !validAddressLiteral(b.HELO) {
		d.Errorf(n, "backend.helo: expected a domain name or an address literal like [192.0.2.1], got %q", b.HELO)
	}
	if n := d.Node("backend.tls_server_name"); n != nil && b.TLSServerName != "" {
		if _, err := netip.ParseAddr(b.TLSServerName); err != nil && !confval.ValidDomain(b.TLSServerName) {
			d.Errorf(n, "backend.tls_server_name: expected a domain name or an IP address, got %q", b.TLSServerName)
		}
	}
	// checkFile first: reading a non-regular file such as /dev/zero would
	// never finish.
	if n := d.Node("backend.tls_ca"); n != nil && b.TLSCA != "" && checkFile(d, "backend.tls_ca", b.TLSCA) {
		if pem, err := os.ReadFile(b.TLSCA); err != nil {
			d.Errorf(n, "backend.tls_ca: cannot use %q: %v", b.TLSCA, unwrapPath(err))
		} else if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			d.Errorf(n, "backend.tls_ca: cannot use %q: no PEM certificates found", b.TLSCA)
		}
	}
	confval.Positive(d, "backend.connect_timeout", b.ConnectTimeout)
	confval.Positive(d, "backend.command_timeout", b.CommandTimeout)
	confval.Positive(d, "backend.data_timeout", b.DataTimeout)
	confval.Positive(d, "backend.idle_timeout", b.IdleTimeout)
	confval.AtLeast(d, "backend.max_idle_connections", "an integer", int64(b.MaxIdleConnections), 0)
}

// validatePostmaster checks the postmaster address against domains, so
// that mail for <Postmaster> is never refused as relaying.
func validatePostmaster(d *yamlpos.Decoder, c *Config) {
	n := d.Node("postmaster")
	if n == nil || c.Postmaster == "" {
		return // the default
	}
	at := strings.LastIndexByte(c.Postmaster, '@')
	if at <= 0 || strings.ContainsAny(c.Postmaster, " <>\"") {
		d.Errorf(n, "postmaster: expected an address like postmaster@example.org, got %q", c.Postmaster)
		return
	}
	dom := strings.ToLower(c.Postmaster[at+1:])
	if !slices.Contains(c.Domains, dom) {
		d.Errorf(n, "postmaster: expected an address at one of domains (%s), got %q", strings.Join(c.Domains, ", "), c.Postmaster)
	}
}

func validateDomains(d *yamlpos.Decoder, c *Config) {
	if n := d.Node("domains"); n != nil && len(c.Domains) == 0 {
		d.Errorf(n, "domains: expected at least one domain name")
	}
	seen := map[string]string{}
	for i, dom := range c.Domains {
		p := fmt.Sprintf("domains[%d]", i)
		n := d.Node(p)
		if n == nil {
			continue
		}
		switch first, dup := seen[dom]; {
		case !confval.ValidDomain(dom):
			d.Errorf(n, "%s: expected a domain name like example.org, got %q", p, dom)
		case dup:
			d.Errorf(n, "%s: %q is already listed as %s", p, dom, first)
		default:
			seen[dom] = p
		}
	}
}

func validateDNS(d *yamlpos.Decoder, s *DNS) {
	for i, srv := range s.Servers {
		p := fmt.Sprintf("dns.servers[%d]", i)
		n := d.Node(p)
		if n == nil {
			continue
		}
		host, _, err := splitHostPort(srv)
		if err == nil {
			if _, aerr := netip.ParseAddr(host); aerr != nil {
				err = fmt.Errorf("host %q is not an IP address", host)
			}
		}
		if err != nil {
			d.Errorf(n, "%s: expected an IP address or IP:port like 127.0.0.1:53, got %q (%v)", p, srv, unwrapAddr(err))
		}
	}
	confval.Positive(d, "dns.timeout", s.Timeout)
}

// validateRules checks that each rules file path (resolved by normalize)
// names a regular file. The files are only
// parsed by the rules package; checking they exist here means a typo in a
// path stops startup (or a reload) with the position of the entry.
func validateRules(d *yamlpos.Decoder, c *Config) {
	seen := map[string]string{}
	for i, p := range c.Rules {
		key := fmt.Sprintf("rules[%d]", i)
		n := d.Node(key)
		if n == nil {
			continue
		}
		if p == "" {
			d.Errorf(n, "%s: expected a file path, got \"\"", key)
			continue
		}
		fi, err := os.Stat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			d.Errorf(n, "%s: no such file %q", key, p)
		case err != nil:
			d.Errorf(n, "%s: cannot use %q: %v", key, p, unwrapPath(err))
		case !fi.Mode().IsRegular():
			d.Errorf(n, "%s: cannot use %q: not a regular file", key, p)
		default:
			// The same file twice would load every rule in it twice,
			// which the rules loader reports as redefinitions.
			if first, dup := seen[p]; dup {
				d.Errorf(n, "%s: %q is already listed as %s", key, p, first)
			} else {
				seen[p] = key
			}
		}
	}
}

// validAddressLiteral accepts an RFC 5321 address literal: "[192.0.2.1]" or
// "[IPv6:2001:db8::1]".
func validAddressLiteral(s string) bool {
	inner, ok := strings.CutPrefix(s, "[")
	if !ok {
		return false
	}
	inner, ok = strings.CutSuffix(inner, "]")
	if !ok {
		return false
	}
	if v6, ok := strings.CutPrefix(inner, "IPv6:"); ok {
		a, err := netip.ParseAddr(v6)
		return err == nil && a.Is6() && a.Zone() == ""
	}
	a, err := netip.ParseAddr(inner)
	return err == nil && a.Is4()
}
