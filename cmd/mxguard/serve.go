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
	"net/netip"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"mxguard/checks/resolver"
	"mxguard/config"
	"mxguard/console"
	"mxguard/held"
	"mxguard/internal/membudget"
	"mxguard/internal/metrics"
	"mxguard/internal/state"
	"mxguard/policy"
	"mxguard/proxy"
)

// instance is a running mxguard: the listening sockets, the proxy server,
// and the runtime of the configuration in force, which a reload replaces.
type instance struct {
	// boot is the configuration the sockets were opened with: what a
	// reload cannot change is compared against it.
	boot    *config.Config
	cur     atomic.Pointer[runtime]
	log     *slog.Logger
	level   *slog.LevelVar
	metrics *metrics.Metrics
	mem     *membudget.Budget
	http    *http.Server
	// The console, when configured: its pages, its address, its index
	// and what stops the index following the verdict log.
	consoleHTTP      *http.Server
	consoleSrv       *console.Server
	consoleUsersFile string
	consoleAddr      string
	consoleIndex     *console.Index
	stopConsole      context.CancelFunc
	consoleDone      <-chan struct{}
	srv              *proxy.Server
	lns              []net.Listener
	addrs            []string
	// sockets hold, by index of boot.Listen, what a reload changes on a
	// socket already listening.
	sockets []*socket
	// vlogs are the verdict logs opened so far, by path. One that a reload
	// moved away from stays open for the sessions still writing to it,
	// until shutdown.
	vlogs map[string]*policy.VerdictLog
	// retired are parts a reload replaced that sessions in flight may
	// still use: closed at shutdown.
	retired []io.Closer
	// dnsMu guards dnsBase, the counters of the resolvers a reload
	// replaced, so that the DNS metrics never go backwards.
	dnsMu   sync.Mutex
	dnsBase resolver.Stats
	errc    chan error
	wg      sync.WaitGroup
	// store is the state store, opened once at start (state.* needs a
	// restart) and closed after the sessions drained; ctl serves the
	// admin's requests for the embedded store.
	store state.Store
	ctl   *http.Server
	// held is the held-mail store (hold.dir), opened once at start like
	// the state store; heldCtl serves its releases and deletions, and
	// heldStop ends its expiry sweep.
	held     *held.Store
	heldCtl  *http.Server
	heldStop chan struct{}
}

// socket is what a reload can change on a listening socket: the STARTTLS
// configuration and the load balancers trusted to send a PROXY header.
type socket struct {
	tls     atomic.Pointer[tls.Config]
	trusted atomic.Pointer[[]netip.Prefix]
}

func (s *socket) trustedList() []netip.Prefix { return *s.trusted.Load() }

func newLogger(w io.Writer, format config.LogFormat, level slog.Leveler) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == config.FormatJSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// start builds everything the config describes and starts serving. Nothing
// is left running when it returns an error.
func start(cfg *config.Config, logw io.Writer) (_ *instance, err error) {
	level := new(slog.LevelVar)
	level.Set(cfg.Log.SlogLevel())
	in := &instance{boot: cfg, log: newLogger(logw, cfg.Log.Format, level), level: level, errc: make(chan error, len(cfg.Listen)),
		metrics: metrics.New(), vlogs: map[string]*policy.VerdictLog{},
		// One budget for the message content held in memory by every
		// session (the spool) and the header sections read ahead (the
		// policy's DKIM prefetcher), for the life of the process: the
		// messages in flight across a reload hold their share of it.
		mem: membudget.New(int64(cfg.Spool.MemoryBudget))}
	in.metrics.SpoolMemory(in.mem.InUse, in.mem.Limit())
	defer func() {
		if err != nil {
			in.closeAll()
		}
	}()
	var emb *state.Embedded
	if in.store, emb, err = openStore(cfg, in.log, in.metrics); err != nil {
		return nil, err
	}
	if emb != nil {
		if in.ctl, err = serveControl(cfg.State.Dir, in.store, in.log); err != nil {
			return nil, err
		}
	}
	if in.held, err = openHeld(cfg, in.log); err != nil {
		return nil, err
	}
	rt, err := in.build(cfg, nil)
	if err != nil {
		return nil, err
	}
	in.commit(rt, nil)
	if in.heldCtl, err = in.serveHeldControl(cfg.Hold.Dir); err != nil {
		return nil, err
	}
	// Expiry runs at start too: a server that was down past hold.keep
	// does not keep old mail until its first tick.
	in.expireHeld()
	in.heldStop = make(chan struct{})
	go in.sweepHeld(cfg.Hold.Keep.Duration, in.heldStop)
	in.metrics.DNSStats(func() (uint64, uint64, uint64, uint64) {
		st := in.cur.Load().res.Stats()
		in.dnsMu.Lock()
		defer in.dnsMu.Unlock()
		return in.dnsBase.Hits + st.Hits, in.dnsBase.Misses + st.Misses, in.dnsBase.Queries + st.Queries, in.dnsBase.Errors + st.Errors
	})
	in.srv = proxy.NewServer(rt.opts)
	if cfg.Metrics.Address != "" {
		if err := in.serveMetrics(cfg.Metrics.Address, cfg.Metrics.Pprof); err != nil {
			return nil, err
		}
	}
	if cfg.Console.Address != "" {
		ctx, cancel := context.WithCancel(context.Background())
		in.stopConsole = cancel
		if err := in.serveConsole(ctx, cfg); err != nil {
			return nil, err
		}
	}
	for i, lc := range cfg.Listen {
		sock := &socket{}
		sock.tls.Store(rt.tls[i])
		sock.trusted.Store(&rt.trusted[i])
		in.sockets = append(in.sockets, sock)
		l, err := net.Listen("tcp", lc.Address)
		if err != nil {
			return nil, fmt.Errorf("listen: %w", err)
		}
		in.lns = append(in.lns, l)
		in.addrs = append(in.addrs, l.Addr().String())
		if lc.ProxyProtocol {
			l = proxy.ProxyProtoListenerFunc(l, sock.trustedList, 10*time.Second)
		}
		in.log.Info("listening", "addr", l.Addr().String(), "starttls", lc.TLS != nil, "proxy_protocol", lc.ProxyProtocol)
		in.wg.Add(1)
		go func() {
			defer in.wg.Done()
			if err := in.srv.Serve(l, proxy.Listener{TLSFunc: sock.tls.Load}); err != nil && !errors.Is(err, proxy.ErrServerClosed) {
				in.errc <- err
			}
		}()
	}
	return in, nil
}

// shutdown drains sessions for up to the configured time, then closes
// everything. It returns false when sessions had to be cut off.
func (in *instance) shutdown() bool {
	drain := in.cur.Load().cfg.DrainTimeout.Duration
	ctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	in.log.Info("draining", "timeout", drain, "sessions", in.srv.Active())
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
	in.closeConsole()
	for _, l := range in.lns {
		_ = l.Close()
	}
	if rt := in.cur.Load(); rt != nil {
		rt.fwd.Close()
		if rt.sink != nil {
			_ = rt.sink.Close()
		}
		if rt.rcpts != nil {
			_ = rt.rcpts.Close()
		}
	}
	for _, c := range in.retired {
		_ = c.Close()
	}
	for _, l := range in.vlogs {
		_ = l.Close()
	}
	if in.ctl != nil {
		_ = in.ctl.Close()
	}
	if in.heldStop != nil {
		close(in.heldStop)
	}
	if in.heldCtl != nil {
		_ = in.heldCtl.Close()
	}
	if in.held != nil {
		_ = in.held.Close()
	}
	if in.store != nil {
		// Last: the sessions have drained, so what they recorded is in
		// the store, and the embedded store writes it out now.
		if err := in.store.Close(); err != nil {
			in.log.Error("state: closing the store", "err", err)
		}
	}
}

// Exit codes, documented in the README: 0 after a clean shutdown, 1 when
// serving failed, 2 for bad usage or a bad config file.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

func cmdServe(args []string, stdout, stderr io.Writer) int {
	path, code, ok := configFlag("serve", "usage: mxguard serve [--config FILE]\n\nRuns the SMTP filtering proxy described by FILE until SIGTERM or SIGINT,\nthen drains sessions in flight for up to drain_timeout.\n\n", args, stderr)
	if !ok {
		return code
	}
	cfg, _, code := loadChecked(path, stderr)
	if cfg == nil {
		return code
	}
	return serve(cfg, path, stderr)
}

// configFlag parses the arguments of a command whose one flag is
// --config: the path, or the exit code when the command must not go on
// (-h, a bad flag, a stray argument).
func configFlag(name, usage string, args []string, stderr io.Writer) (path string, code int, ok bool) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	p := fs.String("config", defaultConfig, "configuration `file`")
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return "", usageExit(err), false
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return "", exitUsage, false
	}
	return *p, exitOK, true
}

// loadChecked loads the config at path and compiles every file it names
// (rules, recipients, certificates): a problem in one of them is a bad
// configuration too, reported on stderr as file:line:col with exit 2, not
// a failure to serve. On failure the config is nil and the exit code is
// what to return.
func loadChecked(path string, stderr io.Writer) (*config.Config, *compiled, int) {
	cfg, err := config.Load(path)
	if err == nil {
		var c *compiled
		if c, err = compile(cfg); err == nil {
			return cfg, c, exitOK
		}
	}
	fmt.Fprintln(stderr, err)
	return nil, nil, exitUsage
}

// serve runs cfg until a signal, and returns the exit code. path is the
// config file, re-read on SIGHUP.
func serve(cfg *config.Config, path string, logw io.Writer) int {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1)
	defer signal.Stop(sigs)
	in, err := start(cfg, logw)
	if err != nil {
		newLogger(logw, cfg.Log.Format, cfg.Log.SlogLevel()).Error("cannot start", "err", err)
		var se *stateDirError
		var ce *configError
		var he *heldDirError
		if errors.As(err, &se) || errors.As(err, &ce) || errors.As(err, &he) {
			// The state directory, the held-mail directory, the console's
			// users file: the configuration's to fix.
			return exitUsage
		}
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
				in.reopenLogs()
				continue
			}
			in.log.Info("signal received, shutting down", "signal", sig.String())
			in.shutdown()
			return exitOK
		}
	}
}
