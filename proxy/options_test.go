package proxy

// Options for tests, built from config.Default: the proxy has no defaults
// of its own (NewServer and NewForwarder panic on an unset limit), and
// writing the values here again would be a second copy that could drift
// from the one the mxguard binary uses.

import (
	"io"
	"log/slog"
	"strings"
	"testing"

	"mxguard/config"
	"mxguard/internal/membudget"
)

// testOptions are the server options a default configuration gives, with
// the rate limits off (a test turns on the ones it tests, withRate), the
// spool in dir and a silent logger.
func testOptions(dir string) Options {
	c := config.Default()
	l := c.Limits
	return Options{
		Hostname:            "mx.example.org",
		MaxConnections:      l.MaxConnections,
		MaxConnectionsPerIP: l.MaxConnectionsPerIP,
		MaxMessageBytes:     int64(l.MaxMessageBytes),
		MaxRecipients:       l.MaxRecipients,
		MaxErrors:           l.MaxErrors,
		MaxJunkCommands:     l.MaxJunkCommands,
		CommandTimeout:      l.CommandTimeout.Duration,
		DataTimeout:         l.DataTimeout.Duration,
		GreetPause:          l.GreetPause.Duration,
		Rate:                withRate(RateLimits{}),
		Spool:               Spool{Dir: dir, Threshold: int(c.Spool.MemoryThreshold), Memory: membudget.New(int64(c.Spool.MemoryBudget))},
		Logger:              slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// withRate is r with the per-network factor and the tracking bound of a
// default configuration where r leaves them zero.
func withRate(r RateLimits) RateLimits {
	d := config.Default().Limits.Rate
	if r.NetFactor == 0 {
		r.NetFactor = d.NetFactor
	}
	if r.MaxTracked == 0 {
		r.MaxTracked = d.MaxTracked
	}
	return r
}

// testBackendOptions are the forwarder options a default configuration
// gives for a backend at addr.
func testBackendOptions(addr string) BackendOptions {
	b := config.Default().Backend
	return BackendOptions{
		Address:        addr,
		Hostname:       "mx.example.org",
		StartTLS:       b.StartTLS,
		ForwardClient:  b.ForwardClient,
		ConnectTimeout: b.ConnectTimeout.Duration,
		CommandTimeout: b.CommandTimeout.Duration,
		DataTimeout:    b.DataTimeout.Duration,
		MaxIdle:        b.MaxIdleConnections,
		IdleTimeout:    b.IdleTimeout.Duration,
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// TestOptionsWithoutLimits: a server or forwarder given no limits refuses
// to start, naming what is missing, rather than running with no bound (or
// with a second set of defaults that could drift from config.Default).
func TestOptionsWithoutLimits(t *testing.T) {
	panics := func(name string, f func(), want ...string) {
		t.Helper()
		defer func() {
			t.Helper()
			msg, _ := recover().(string)
			for _, w := range want {
				if !strings.Contains(msg, w) {
					t.Errorf("%s: panic %q does not name %s", name, msg, w)
				}
			}
		}()
		f()
		t.Errorf("%s: no panic", name)
	}
	panics("NewServer", func() { NewServer(Options{Hostname: "mx.example.org"}) },
		"MaxConnections,", "MaxConnectionsPerIP", "MaxMessageBytes", "MaxRecipients", "MaxErrors", "MaxJunkCommands",
		"CommandTimeout", "DataTimeout", "Spool.Threshold", "Spool.Memory")
	o := testOptions(t.TempDir())
	o.Rate = RateLimits{ConnectionsPerMinute: 1}
	panics("NewServer with a rate limit", func() { NewServer(o) }, "Rate.MaxTracked")
	panics("NewForwarder", func() { NewForwarder(BackendOptions{Address: "127.0.0.1:25"}) },
		"StartTLS", "ForwardClient", "ConnectTimeout", "CommandTimeout", "DataTimeout", "IdleTimeout")

	// The options the tests use are complete.
	NewServer(testOptions(t.TempDir()))
	NewForwarder(testBackendOptions("127.0.0.1:25")).Close()
}
