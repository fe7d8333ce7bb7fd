package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"mxguard/checks/dnsbl"
	"mxguard/checks/headers"
	"mxguard/checks/rcpt"
	"mxguard/checks/resolver"
	"mxguard/config"
	"mxguard/internal/metrics"
	"mxguard/internal/sink"
	"mxguard/policy"
	"mxguard/proxy"
	"mxguard/rules"
)

// instance is a running mxguard: listeners, proxy server and forwarder.
type instance struct {
	cfg     *config.Config
	log     *slog.Logger
	eng     *policy.Engine
	metrics *metrics.Metrics
	http    *http.Server
	rcpts   *rcpt.Verifier
	vlog    *policy.VerdictLog
	srv     *proxy.Server
	fwd     *proxy.Forwarder
	sink    *sink.Sink
	lns     []net.Listener
	addrs   []string
	errc    chan error
	wg      sync.WaitGroup
}

func newLogger(w io.Writer, l config.Log) *slog.Logger {
	opts := &slog.HandlerOptions{Level: l.SlogLevel()}
	if l.Format == config.FormatJSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// start builds everything the config describes and starts serving. Nothing
// is left running when it returns an error.
func start(cfg *config.Config, logw io.Writer) (_ *instance, err error) {
	in := &instance{cfg: cfg, log: newLogger(logw, cfg.Log), errc: make(chan error, len(cfg.Listen)), metrics: metrics.New()}
	defer func() {
		if err != nil {
			in.closeAll()
		}
	}()
	network, addr := cfg.Backend.Kind()
	if network == "builtin" {
		// The development backend runs in this process but is still
		// reached over SMTP on loopback: the forward path is the real one.
		in.sink, err = sink.Start(sink.Options{Listen: "127.0.0.1:0", Dir: addr, LMTP: cfg.Backend.Protocol == config.ProtocolLMTP, Logger: in.log})
		if err != nil {
			return nil, err
		}
		network, addr = "tcp", in.sink.Addr()
		in.log.Info("built-in development backend", "dir", cfg.Backend.Address[len("builtin:"):], "addr", addr)
	}
	btls, err := backendTLS(cfg.Backend)
	if err != nil {
		return nil, err
	}
	set, err := loadRules(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.VerdictLog != "" {
		if in.vlog, err = policy.OpenVerdictLog(cfg.VerdictLog); err != nil {
			return nil, err
		}
	}
	res, err := newResolver(cfg)
	if err != nil {
		return nil, err
	}
	lists, err := dnsblZones(cfg)
	if err != nil {
		return nil, err
	}
	if in.rcpts, err = newVerifier(cfg, network, addr); err != nil {
		return nil, err
	}
	in.eng = policy.NewEngine(policy.Options{Domains: cfg.Domains, Rules: set, Log: in.vlog, Logger: in.log,
		Resolver: res, Hostname: cfg.Hostname, AuthResults: cfg.AuthenticationResults, DNSBL: lists, Headers: headerOptions(cfg),
		Recipients: in.rcpts, Metrics: in.metrics})
	in.metrics.DNSStats(func() (uint64, uint64, uint64, uint64) {
		st := res.Stats()
		return st.Hits, st.Misses, st.Queries, st.Errors
	})
	in.fwd = proxy.NewForwarder(proxy.BackendOptions{
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
	in.srv = proxy.NewServer(proxy.Options{
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
		Spool:   proxy.Spool{Dir: cfg.Spool.Dir, Threshold: int(cfg.Spool.MemoryThreshold)},
		Policy:  in.eng,
		Backend: in.fwd,
		Logger:  in.log,
	})
	if cfg.Metrics.Address != "" {
		if err := in.serveMetrics(cfg.Metrics.Address, cfg.Metrics.Pprof); err != nil {
			return nil, err
		}
	}
	for _, lc := range cfg.Listen {
		var lo proxy.Listener
		if lc.TLS != nil {
			cert, err := lc.TLS.LoadCertificate()
			if err != nil {
				return nil, fmt.Errorf("listen %s: tls: %w", lc.Address, err)
			}
			lo.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		}
		l, err := net.Listen("tcp", lc.Address)
		if err != nil {
			return nil, fmt.Errorf("listen: %w", err)
		}
		in.lns = append(in.lns, l)
		in.addrs = append(in.addrs, l.Addr().String())
		if lc.ProxyProtocol {
			l = proxy.ProxyProtoListener(l, lc.TrustedPrefixes(), 10*time.Second)
		}
		in.log.Info("listening", "addr", l.Addr().String(), "starttls", lo.TLS != nil, "proxy_protocol", lc.ProxyProtocol)
		in.wg.Add(1)
		go func() {
			defer in.wg.Done()
			if err := in.srv.Serve(l, lo); err != nil && !errors.Is(err, proxy.ErrServerClosed) {
				in.errc <- err
			}
		}()
	}
	return in, nil
}

func backendTLS(b config.Backend) (*tls.Config, error) {
	if b.StartTLS == config.StartTLSNone {
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

// shutdown drains sessions for up to the configured time, then closes
// everything. It returns false when sessions had to be cut off.
func (in *instance) shutdown() bool {
	ctx, cancel := context.WithTimeout(context.Background(), in.cfg.DrainTimeout.Duration)
	defer cancel()
	in.log.Info("draining", "timeout", in.cfg.DrainTimeout.Duration, "sessions", in.srv.Active())
	err := in.srv.Shutdown(ctx)
	in.wg.Wait()
	in.closeAll()
	if err != nil {
		in.log.Warn("drain timeout passed; remaining sessions were told 421")
		return false
	}
	return true
}

func (in *instance) closeAll() {
	if in.http != nil {
		_ = in.http.Close()
	}
	for _, l := range in.lns {
		_ = l.Close()
	}
	if in.fwd != nil {
		in.fwd.Close()
	}
	if in.sink != nil {
		_ = in.sink.Close()
	}
	if in.vlog != nil {
		_ = in.vlog.Close()
	}
	if in.rcpts != nil {
		_ = in.rcpts.Close()
	}
}

// newVerifier builds recipient verification, probing the backend at
// network/addr; nil when the config verifies no recipients.
func newVerifier(cfg *config.Config, network, addr string) (*rcpt.Verifier, error) {
	r := cfg.Recipients
	if r.Verify == "" || r.Verify == "none" {
		return nil, nil
	}
	backend := addr
	if network == "unix" {
		backend = "unix:" + addr
	}
	v, err := rcpt.New(rcpt.Options{Verify: r.Verify, File: r.File, Backend: backend, LMTP: cfg.Backend.Protocol == config.ProtocolLMTP,
		Helo: cfg.Backend.HELO, PositiveTTL: r.PositiveTTL.Duration, NegativeTTL: r.NegativeTTL.Duration})
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

// headerOptions are the header checks' limits and protected domains.
func headerOptions(cfg *config.Config) headers.Options {
	return headers.Options{MaxBytes: int(cfg.Headers.MaxBytes), MaxFields: cfg.Headers.MaxFields, Protected: cfg.Headers.ProtectedDomains}
}

// dnsblZones turns the dnsbl config into the check's zones.
func dnsblZones(cfg *config.Config) ([]dnsbl.Zone, error) {
	var out []dnsbl.Zone
	for _, z := range cfg.DNSBL {
		zone := dnsbl.Zone{Zone: z.Zone, Weight: z.Weight}
		if strings.TrimSpace(z.Codes) != "" {
			codes, err := dnsbl.ParseCodes(z.Codes)
			if err != nil {
				return nil, fmt.Errorf("dnsbl %s: %w", z.Zone, err)
			}
			zone.Match = codes
		}
		if err := zone.Validate(); err != nil {
			return nil, fmt.Errorf("dnsbl %s: %w", z.Zone, err)
		}
		out = append(out, zone)
	}
	return out, nil
}

// loadRules compiles the rules files the config names, or returns nil for
// the built-in default set.
func loadRules(cfg *config.Config) (*rules.Set, error) {
	if len(cfg.Rules) == 0 {
		return nil, nil
	}
	return rules.LoadFiles(cfg.Rules, policy.RulesOptions())
}

// reload re-reads the config file and its rules and swaps in the new
// domains and rules at once. Sessions in flight finish on the old ones. On
// any error nothing changes and the errors are logged.
func (in *instance) reload(path string) {
	cfg, err := config.Load(path)
	if err == nil {
		var set *rules.Set
		if set, err = loadRules(cfg); err == nil && in.rcpts != nil {
			err = in.rcpts.Reload()
		}
		if err == nil {
			in.eng.Reload(cfg.Domains, set)
			n := len(in.eng.Rules().Rules)
			in.log.Info("reloaded", "domains", cfg.Domains, "rules", n, "files", cfg.Rules)
			if cfg.VerdictLog != in.cfg.VerdictLog || !slices.Equal(addrsOf(cfg), addrsOf(in.cfg)) || cfg.Backend != in.cfg.Backend {
				in.log.Warn("listen, backend and verdict_log changes take effect at the next restart")
			}
			return
		}
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		in.log.Error("reload failed, keeping the running configuration", "error", line)
	}
}

func addrsOf(cfg *config.Config) []string {
	var out []string
	for _, l := range cfg.Listen {
		out = append(out, l.Address)
	}
	return out
}

// Exit codes, documented in the README: 0 after a clean shutdown, 1 when
// serving failed, 2 for bad usage or a bad config file.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

func cmdServe(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "/etc/mxguard/mxguard.yaml", "configuration `file`")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: mxguard serve [--config FILE]\n\nRuns the SMTP filtering proxy described by FILE until SIGTERM or SIGINT,\nthen drains sessions in flight for up to drain_timeout.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return usageExit(err)
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return exitUsage
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	return serve(cfg, *path, stderr)
}

// serve runs cfg until a signal, and returns the exit code. path is the
// config file, re-read on SIGHUP.
func serve(cfg *config.Config, path string, logw io.Writer) int {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1)
	defer signal.Stop(sigs)
	in, err := start(cfg, logw)
	if err != nil {
		newLogger(logw, cfg.Log).Error("cannot start", "err", err)
		return exitFailed
	}
	in.log.Info("mxguard started", "version", version, "hostname", cfg.Hostname, "domains", cfg.Domains)
	for {
		select {
		case err := <-in.errc:
			in.log.Error("listener failed", "err", err)
			in.shutdown()
			return exitFailed
		case sig := <-sigs:
			switch sig {
			case syscall.SIGHUP:
				in.reload(path)
				continue
			case syscall.SIGUSR1:
				// Log rotation: the rotated file is closed, a new one
				// opened under the configured name.
				if in.vlog != nil {
					if err := in.vlog.Reopen(); err != nil {
						in.log.Error("cannot reopen the verdict log", "err", err)
					} else {
						in.log.Info("verdict log reopened", "path", in.cfg.VerdictLog)
					}
				}
				continue
			}
			in.log.Info("signal received, shutting down", "signal", sig.String())
			in.shutdown()
			return exitOK
		}
	}
}
