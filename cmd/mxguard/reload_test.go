package main

import (
	"fmt"
	"testing"
	"time"

	"mxguard/config"
)

// TestRestartKeys: every setting a running mxguard cannot change is named
// by its key, with the running and the configured value; the settings a
// reload applies are not.
func TestRestartKeys(t *testing.T) {
	base := func() *config.Config {
		c := config.Default()
		c.Hostname = "mx.example.org"
		c.Listen = []config.Listener{{Address: "127.0.0.1:25"}, {Address: "127.0.0.1:587", ProxyProtocol: true, ProxyTrusted: []string{"10.0.0.1"}}}
		return c
	}
	for _, tc := range []struct {
		name   string
		change func(*config.Config)
		want   string
	}{
		{"nothing", func(*config.Config) {}, "[]"},
		{"applied settings", func(c *config.Config) {
			c.Hostname = "mx2.example.org"
			c.Listen[1].ProxyTrusted = []string{"10.0.0.2"}
			c.Listen[0].TLS = &config.TLS{Cert: "c.pem", Key: "k.pem"}
			c.Limits.MaxMessageBytes = config.MiB
			c.Log.Level = "debug"
		}, "[]"},
		{"address", func(c *config.Config) { c.Listen[0].Address = "127.0.0.1:2525" },
			"[{listen[0].address 127.0.0.1:25 127.0.0.1:2525}]"},
		{"proxy protocol", func(c *config.Config) { c.Listen[1].ProxyProtocol = false },
			"[{listen[1].proxy_protocol true false}]"},
		{"listener removed", func(c *config.Config) { c.Listen = c.Listen[:1] },
			"[{listen[1].address 127.0.0.1:587 }]"},
		{"listener added", func(c *config.Config) { c.Listen = append(c.Listen, config.Listener{Address: "[::1]:25"}) },
			"[{listen[2].address  [::1]:25}]"},
		{"metrics and log format", func(c *config.Config) {
			c.Metrics.Address, c.Metrics.Pprof, c.Log.Format = "127.0.0.1:9325", true, config.FormatJSON
		}, "[{metrics.address  127.0.0.1:9325} {metrics.pprof false true} {log.format text json}]"},
		{"memory budget", func(c *config.Config) { c.Spool.MemoryBudget = 64 * config.MiB },
			"[{spool.memory_budget 256MiB 64MiB}]"},
		{"state store", func(c *config.Config) {
			c.State.Dir, c.State.MaxEntries = "/srv/mxguard", 10
			c.State.Redis = &config.StateRedis{Address: "127.0.0.1:6379", KeyPrefix: "a:", Timeout: config.Dur(time.Second)}
		}, "[{state.dir " + config.Default().State.Dir + " /srv/mxguard} {state.max_entries 100000 10} " +
			"{state.redis none address=127.0.0.1:6379 password_file= key_prefix=\"a:\" timeout=1s}]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next := base()
			tc.change(next)
			if got := fmt.Sprint(restartKeys(base(), next)); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}
