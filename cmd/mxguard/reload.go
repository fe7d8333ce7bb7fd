package main

import (
	"fmt"
	"strconv"
	"strings"

	"mxguard/config"
)

// reload re-reads the config file and everything it names, builds the
// runtime of the new configuration and swaps it in: sessions that start
// afterwards get every new setting, sessions in flight finish with theirs.
// A setting that cannot change without a restart (a socket's address) is
// logged as a warning naming its key. On any error nothing changes, every
// problem is logged, and "reloaded" is not.
func (in *instance) reload(path string) {
	cfg, err := config.Load(path)
	if err != nil {
		in.reloadFailed(err)
		return
	}
	prev := in.cur.Load()
	rt, err := in.build(cfg, prev)
	if err != nil {
		in.reloadFailed(err)
		return
	}
	in.commit(rt, prev)
	in.reloadConsoleUsers(cfg)
	pending := restartKeys(in.boot, cfg)
	for _, c := range pending {
		in.log.Warn(c.key+" changed; restart to apply", "running", c.running, "configured", c.configured)
	}
	keys := make([]string, len(pending))
	for i, c := range pending {
		keys[i] = c.key
	}
	in.log.Info("reloaded", "hostname", cfg.Hostname, "domains", cfg.Domains, "rules", len(rt.eng.Rules().Rules), "files", cfg.Rules,
		"pending_restart", keys)
}

func (in *instance) reloadFailed(err error) {
	for _, line := range strings.Split(err.Error(), "\n") {
		in.log.Error("reload failed, keeping the running configuration", "error", line)
	}
}

// commit makes rt the runtime of new sessions, in place of prev (nil at
// start). What prev had and rt does not take over is let go: idle backend
// connections are closed at once, parts a session in flight may still be
// using are closed at shutdown.
func (in *instance) commit(rt, prev *runtime) {
	if rt.vlog != nil {
		in.vlogs[rt.cfg.VerdictLog] = rt.vlog
	}
	in.cur.Store(rt)
	if prev == nil {
		return
	}
	in.level.Set(rt.cfg.Log.SlogLevel())
	in.srv.Reconfigure(rt.opts)
	for i, sock := range in.sockets {
		// A socket the new file no longer lists keeps serving as it was
		// until the restart that removes it.
		if i < len(rt.tls) {
			sock.tls.Store(rt.tls[i])
			sock.trusted.Store(&rt.trusted[i])
		}
	}
	if prev.fwd != rt.fwd {
		// Deliveries in flight finish on their connections, which the
		// closed forwarder then closes instead of keeping.
		prev.fwd.Close()
	}
	if prev.sink != nil && prev.sink != rt.sink {
		in.retired = append(in.retired, prev.sink)
	}
	if prev.rcpts != nil && prev.rcpts != rt.rcpts {
		in.retired = append(in.retired, prev.rcpts)
	}
	if prev.res != rt.res {
		st := prev.res.Stats()
		in.dnsMu.Lock()
		in.dnsBase.Hits += st.Hits
		in.dnsBase.Misses += st.Misses
		in.dnsBase.Queries += st.Queries
		in.dnsBase.Errors += st.Errors
		in.dnsMu.Unlock()
	}
}

// reopenLogs starts new verdict log files under their names, after log
// rotation (SIGUSR1).
func (in *instance) reopenLogs() {
	for path, l := range in.vlogs {
		if err := l.Reopen(); err != nil {
			in.log.Error("cannot reopen the verdict log", "path", path, "err", err)
		} else {
			in.log.Info("verdict log reopened", "path", path)
		}
	}
}

// pendingChange is a setting that differs between the running process and the
// configuration file.
type pendingChange struct {
	key, running, configured string
}

// restartKeys lists the settings of next that a running mxguard cannot
// apply, compared with boot, the configuration it started with: the
// listening sockets (address, PROXY protocol, how many), the metrics
// endpoint, the log format, the memory budget (one for the process), the
// state store and the held-mail store (hold.*).
func restartKeys(boot, next *config.Config) []pendingChange {
	var out []pendingChange
	add := func(key string, running, configured any) {
		r, c := fmt.Sprint(running), fmt.Sprint(configured)
		if r != c {
			out = append(out, pendingChange{key: key, running: r, configured: c})
		}
	}
	for i := 0; i < max(len(boot.Listen), len(next.Listen)); i++ {
		key := "listen[" + strconv.Itoa(i) + "]"
		switch {
		case i >= len(next.Listen):
			add(key+".address", boot.Listen[i].Address, "")
		case i >= len(boot.Listen):
			add(key+".address", "", next.Listen[i].Address)
		default:
			add(key+".address", boot.Listen[i].Address, next.Listen[i].Address)
			add(key+".proxy_protocol", boot.Listen[i].ProxyProtocol, next.Listen[i].ProxyProtocol)
		}
	}
	add("metrics.address", boot.Metrics.Address, next.Metrics.Address)
	add("metrics.pprof", boot.Metrics.Pprof, next.Metrics.Pprof)
	add("log.format", boot.Log.Format, next.Log.Format)
	add("spool.memory_budget", boot.Spool.MemoryBudget, next.Spool.MemoryBudget)
	// The store is opened once: its file's lock, Redis's connections.
	add("state.dir", boot.State.Dir, next.State.Dir)
	add("state.max_entries", boot.State.MaxEntries, next.State.MaxEntries)
	add("state.redis", redisDesc(boot.State.Redis), redisDesc(next.State.Redis))
	add("console.address", boot.Console.Address, next.Console.Address)
	add("console.users_file", boot.Console.UsersFile, next.Console.UsersFile)
	add("console.tls", boot.Console.TLS != nil, next.Console.TLS != nil)
	add("console.keep", boot.Console.Keep.String(), next.Console.Keep.String())
	add("hold.dir", boot.Hold.Dir, next.Hold.Dir)
	add("hold.keep", boot.Hold.Keep.String(), next.Hold.Keep.String())
	add("hold.max_bytes", boot.Hold.MaxBytes, next.Hold.MaxBytes)
	return out
}

// redisDesc is state.redis for comparing and logging: its settings, the
// password file by name.
func redisDesc(r *config.StateRedis) string {
	if r == nil {
		return "none"
	}
	d := fmt.Sprintf("address=%s password_file=%s key_prefix=%q timeout=%s", r.Address, r.PasswordFile, r.KeyPrefix, r.Timeout)
	if r.TLS != nil {
		d += fmt.Sprintf(" tls.ca=%s tls.server_name=%s", r.TLS.CA, r.TLS.ServerName)
	}
	return d
}
