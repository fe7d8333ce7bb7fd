package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"

	"mxguard/checks/rcpt"
	"mxguard/checks/resolver"
	"mxguard/config"
	"mxguard/internal/sink"
	"mxguard/policy"
	"mxguard/proxy"
	"mxguard/rules"
)

// runtime is everything one configuration builds for the sessions that
// start under it: the proxy's options (limits, hostname, spool), the policy
// engine with its checks and rules, the forwarder, the resolver, recipient
// verification, the verdict log and the STARTTLS certificates. A reload
// builds a new runtime and swaps it in whole; sessions in flight keep the
// one they started with. Parts whose settings did not change are carried
// over from the runtime before, so that their state survives a reload: the
// resolver's cache, the recipient cache, the backend connection pool.
type runtime struct {
	cfg  *config.Config
	opts proxy.Options
	eng  *policy.Engine
	fwd  *proxy.Forwarder
	// fwdKey is what fwd was built from, to tell whether a new config can
	// keep it.
	fwdKey   backendKey
	res      *resolver.Resolver
	rcpts    *rcpt.Verifier
	rcptOpts rcpt.Options
	vlog     *policy.VerdictLog
	sink     *sink.Sink
	// tls and trusted are, by index of cfg.Listen, the listener's STARTTLS
	// configuration (nil: none) and its trusted load balancers.
	tls     []*tls.Config
	trusted [][]netip.Prefix
}

// compiled is what a configuration yields before anything is opened or
// started: rules, DNS lists, certificates and the recipients file, each
// read and checked. "mxguard config check" stops here.
type compiled struct {
	rules *rules.Set
	btls  *tls.Config
	caPEM []byte
	certs []*tls.Config
}

// compile reads and checks everything the configuration names besides the
// configuration itself, and reports every problem, not only the first.
func compile(cfg *config.Config) (*compiled, error) {
	var c compiled
	var errs []error
	var err error
	if c.rules, err = loadRules(cfg); err != nil {
		errs = append(errs, err)
	}
	if c.btls, err = backendTLS(cfg.Backend); err != nil {
		errs = append(errs, err)
	}
	if cfg.Backend.TLSCA != "" {
		if c.caPEM, err = os.ReadFile(cfg.Backend.TLSCA); err != nil {
			errs = append(errs, fmt.Errorf("backend: tls_ca: %w", err))
		}
	}
	for i, lc := range cfg.Listen {
		var tc *tls.Config
		if lc.TLS != nil {
			cert, err := lc.TLS.LoadCertificate()
			if err != nil {
				errs = append(errs, fmt.Errorf("listen[%d] %s: tls: %w", i, lc.Address, err))
			}
			tc = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		}
		c.certs = append(c.certs, tc)
	}
	if r := cfg.Recipients; r.Verify == rcpt.VerifyFile || r.Verify == rcpt.VerifyBoth {
		// A verifier for the file alone reads and checks it, and opens
		// nothing.
		v, err := rcpt.New(rcpt.Options{Verify: rcpt.VerifyFile, File: r.File})
		if err != nil {
			errs = append(errs, fmt.Errorf("recipients: %w", err))
		} else {
			_ = v.Close()
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &c, nil
}

// backendKey is what a forwarder depends on: a reload that changes none of
// it keeps the forwarder and its pool of backend connections.
type backendKey struct {
	backend       config.Backend
	hostname      string
	network, addr string
	caPEM         string
}

// build makes the runtime of cfg, taking over from prev (nil at start)
// every part whose settings are unchanged. It starts nothing that serves
// clients; on error, whatever it opened is closed again and prev is left
// as it was.
func (in *instance) build(cfg *config.Config, prev *runtime) (_ *runtime, err error) {
	c, err := compile(cfg)
	if err != nil {
		return nil, err
	}
	rt := &runtime{cfg: cfg, tls: c.certs}
	for _, lc := range cfg.Listen {
		rt.trusted = append(rt.trusted, lc.TrustedPrefixes())
	}
	var opened []io.Closer
	defer func() {
		if err != nil {
			for _, o := range opened {
				_ = o.Close()
			}
		}
	}()
	network, addr := cfg.Backend.Kind()
	if network == "builtin" {
		lmtp := cfg.Backend.Protocol == config.ProtocolLMTP
		if prev != nil && prev.sink != nil && prev.cfg.Backend.Address == cfg.Backend.Address && prev.cfg.Backend.Protocol == cfg.Backend.Protocol {
			rt.sink = prev.sink
		} else {
			// The development backend runs in this process but is still
			// reached over SMTP on loopback: the forward path is the real
			// one.
			if rt.sink, err = sink.Start(sink.Options{Listen: "127.0.0.1:0", Dir: addr, LMTP: lmtp, Logger: in.log}); err != nil {
				return nil, err
			}
			opened = append(opened, rt.sink)
			in.log.Info("built-in development backend", "dir", addr, "addr", rt.sink.Addr())
		}
		network, addr = "tcp", rt.sink.Addr()
	}
	if prev != nil && slices.Equal(prev.cfg.DNS.Servers, cfg.DNS.Servers) && prev.cfg.DNS.Timeout == cfg.DNS.Timeout {
		rt.res = prev.res
	} else if rt.res, err = newResolver(cfg); err != nil {
		return nil, err
	}
	if rt.vlog = in.vlogs[cfg.VerdictLog]; rt.vlog == nil && cfg.VerdictLog != "" {
		if rt.vlog, err = policy.OpenVerdictLog(cfg.VerdictLog); err != nil {
			return nil, err
		}
		opened = append(opened, rt.vlog)
	}
	reuseRcpts := false
	rt.rcptOpts = verifierOptions(cfg, network, addr)
	// Answers are shared through the store: a fleet asks the backend once
	// per address, and a restart keeps them.
	rt.rcptOpts.Store = in.store
	if prev != nil && prev.rcpts != nil && prev.rcptOpts == rt.rcptOpts {
		rt.rcpts, reuseRcpts = prev.rcpts, true
	} else if rt.rcptOpts.Verify != rcpt.VerifyNone {
		if rt.rcpts, err = rcpt.New(rt.rcptOpts); err != nil {
			return nil, fmt.Errorf("recipients: %w", err)
		}
		opened = append(opened, rt.rcpts)
	}
	rt.fwdKey = backendKey{backend: cfg.Backend, hostname: cfg.Hostname, network: network, addr: addr, caPEM: string(c.caPEM)}
	if prev != nil && prev.fwdKey == rt.fwdKey {
		rt.fwd = prev.fwd
	} else {
		rt.fwd = in.newForwarder(cfg, network, addr, c.btls)
	}
	if reuseRcpts {
		// Last, since it cannot be undone: the file the running verifier
		// answers from is replaced only when everything else is ready.
		if err := rt.rcpts.Reload(); err != nil {
			if rt.fwd != prev.fwd {
				rt.fwd.Close()
			}
			return nil, fmt.Errorf("recipients: %w", err)
		}
	}
	rt.eng = policy.NewEngine(policy.Options{Domains: cfg.Domains, Rules: c.rules, Log: rt.vlog, Logger: in.log,
		Resolver: rt.res, Hostname: cfg.Hostname, AuthResults: cfg.AuthenticationResults, Sections: checkSections(cfg),
		Recipients: rt.rcpts, Metrics: in.metrics, Memory: in.mem, CheckTimeout: cfg.Limits.CheckTimeout.Duration,
		State: in.store,
		// serve, and only serve, records what its answers mean for later
		// transactions (a greylist triplet's first attempt).
		Record: true})
	rt.opts = proxy.Options{
		Metrics:             in.metrics,
		Hostname:            cfg.Hostname,
		MaxConnections:      cfg.Limits.MaxConnections,
		MaxConnectionsPerIP: cfg.Limits.MaxConnectionsPerIP,
		MaxMessageBytes:     int64(cfg.Limits.MaxMessageBytes),
		MaxRecipients:       cfg.Limits.MaxRecipients,
		MaxErrors:           cfg.Limits.MaxErrors,
		MaxJunkCommands:     cfg.Limits.MaxJunkCommands,
		Postmaster:          cfg.PostmasterAddress(),
		Exempt:              config.Prefixes(cfg.Limits.Exempt),
		CommandTimeout:      cfg.Limits.CommandTimeout.Duration,
		DataTimeout:         cfg.Limits.DataTimeout.Duration,
		GreetPause:          cfg.Limits.GreetPause.Duration,
		Rate: proxy.RateLimits{
			ConnectionsPerMinute: cfg.Limits.Rate.ConnectionsPerMinute,
			MessagesPerMinute:    cfg.Limits.Rate.MessagesPerMinute,
			RecipientsPerMinute:  cfg.Limits.Rate.RecipientsPerMinute,
			NetFactor:            cfg.Limits.Rate.NetFactor,
			MaxTracked:           cfg.Limits.Rate.MaxTracked,
		},
		Spool:   proxy.Spool{Dir: cfg.Spool.Dir, Threshold: int(cfg.Spool.MemoryThreshold), Memory: in.mem},
		Policy:  rt.eng,
		Backend: rt.fwd,
		Hold:    in.held,
		Logger:  in.log,
		State:   in.store,
	}
	return rt, nil
}

func (in *instance) newForwarder(cfg *config.Config, network, addr string, btls *tls.Config) *proxy.Forwarder {
	return proxy.NewForwarder(proxy.BackendOptions{
		Network:        network,
		Address:        addr,
		LMTP:           cfg.Backend.Protocol == config.ProtocolLMTP,
		Helo:           cfg.Backend.HELO,
		Hostname:       cfg.Hostname,
		StartTLS:       cfg.Backend.StartTLS,
		TLSConfig:      btls,
		ForwardClient:  cfg.Backend.ForwardClient,
		ConnectTimeout: cfg.Backend.ConnectTimeout.Duration,
		CommandTimeout: cfg.Backend.CommandTimeout.Duration,
		DataTimeout:    cfg.Backend.DataTimeout.Duration,
		MaxIdle:        cfg.Backend.MaxIdleConnections,
		IdleTimeout:    cfg.Backend.IdleTimeout.Duration,
		Logger:         in.log,
		Metrics:        in.metrics,
	})
}

func backendTLS(b config.Backend) (*tls.Config, error) {
	if b.StartTLS == proxy.StartTLSNone {
		return nil, nil
	}
	roots, err := b.RootCAs()
	if err != nil {
		return nil, fmt.Errorf("backend: tls_ca: %w", err)
	}
	return &tls.Config{
		RootCAs:            roots,
		ServerName:         b.TLSServerName,
		InsecureSkipVerify: b.TLSSkipVerify, //nolint:gosec // an admin's explicit choice for a backend on a trusted link
		MinVersion:         tls.VersionTLS12,
	}, nil
}

// verifierOptions are the recipient verification options of cfg, probing
// the backend at network/addr; Verify is "none" when the config verifies no
// recipients.
func verifierOptions(cfg *config.Config, network, addr string) rcpt.Options {
	r := cfg.Recipients
	if r.Verify == "" || r.Verify == rcpt.VerifyNone {
		return rcpt.Options{Verify: rcpt.VerifyNone}
	}
	backend := addr
	if network == "unix" {
		backend = "unix:" + addr
	}
	return rcpt.Options{Verify: r.Verify, File: r.File, Backend: backend, LMTP: cfg.Backend.Protocol == config.ProtocolLMTP,
		Helo: cfg.Backend.HELO, PositiveTTL: r.PositiveTTL.Duration, NegativeTTL: r.NegativeTTL.Duration}
}

// newVerifier builds recipient verification, probing the backend at
// network/addr; nil when the config verifies no recipients.
func newVerifier(cfg *config.Config, network, addr string) (*rcpt.Verifier, error) {
	o := verifierOptions(cfg, network, addr)
	if o.Verify == rcpt.VerifyNone {
		return nil, nil
	}
	v, err := rcpt.New(o)
	if err != nil {
		return nil, fmt.Errorf("recipients: %w", err)
	}
	return v, nil
}

// newResolver builds the DNS resolver the checks share.
func newResolver(cfg *config.Config) (*resolver.Resolver, error) {
	r, err := resolver.New(resolver.Options{Servers: cfg.DNS.Servers, Timeout: cfg.DNS.Timeout.Duration})
	if err != nil {
		return nil, fmt.Errorf("dns: %w", err)
	}
	return r, nil
}

// checkSections are the checks' config sections by check name: each
// registered check (policy.Found) gets the config section of its name.
func checkSections(cfg *config.Config) map[string]any {
	out := map[string]any{}
	for _, name := range policy.CheckNames() {
		if s, ok := cfg.Section(name); ok {
			out[name] = s
		}
	}
	return out
}

// loadRules compiles the rules files the config names, or returns nil for
// the built-in default set.
func loadRules(cfg *config.Config) (*rules.Set, error) {
	if len(cfg.Rules) == 0 {
		return nil, nil
	}
	return rules.LoadFiles(cfg.Rules, policy.RulesOptions())
}
