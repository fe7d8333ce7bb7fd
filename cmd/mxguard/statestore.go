package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"mxguard/config"
	"mxguard/internal/metrics"
	"mxguard/internal/state"
)

// controlSocket is the embedded store's control socket in state.dir: the
// store's file is locked by the running server, so "mxguard state" asks
// the server through it.
const controlSocket = "control.sock"

// stateDirError is a state.dir that serve cannot use: a configuration
// problem (exit 2), named by its key.
type stateDirError struct{ err error }

func (e *stateDirError) Error() string { return "state.dir: " + e.err.Error() }
func (e *stateDirError) Unwrap() error { return e.err }

// openStore opens the store cfg describes, for serve: the embedded store
// in state.dir (emb is it, for the control socket), or Redis with this
// process's memory as its fallback. Operations are reported to m.
func openStore(cfg *config.Config, log *slog.Logger, m *metrics.Metrics) (st state.Store, emb *state.Embedded, err error) {
	if r := cfg.State.Redis; r != nil {
		red, err := newRedisStore(r)
		if err != nil {
			return nil, nil, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), r.Timeout.Duration)
		defer cancel()
		if err := red.Ping(ctx); err != nil {
			// Not fatal: the fallback answers until Redis is there.
			log.Warn("state: redis does not answer yet; this instance answers from its memory until it does", "addr", r.Address, "err", err)
		}
		local := state.NewMemory(state.MemoryOptions{MaxEntries: cfg.State.MaxEntries})
		return state.NewFallback(state.Instrument(red, "redis", m), local, state.FallbackOptions{Observer: m, Logger: log}), nil, nil
	}
	if err := state.EnsureDir(cfg.State.Dir); err != nil {
		return nil, nil, &stateDirError{err}
	}
	emb, err = state.OpenEmbedded(cfg.State.Dir, state.EmbeddedOptions{
		MemoryOptions: state.MemoryOptions{MaxEntries: cfg.State.MaxEntries}, Logger: log})
	if err != nil {
		return nil, nil, &stateDirError{err}
	}
	return state.Instrument(emb, "embedded", m), emb, nil
}

// newRedisStore is the Redis of cfg, for serve and for the admin.
func newRedisStore(r *config.StateRedis) (*state.Redis, error) {
	pw, err := r.Password()
	if err != nil {
		return nil, err
	}
	tc, err := r.TLSConfig()
	if err != nil {
		return nil, err
	}
	return state.NewRedis(state.RedisOptions{Address: r.Address, Password: pw, TLS: tc, Prefix: r.KeyPrefix, Timeout: r.Timeout.Duration}), nil
}

// jsonEntry is an entry on the control socket.
type jsonEntry struct {
	Key   string `json:"key"`
	Value string `json:"value"`
	// TTLMillis is how long the entry lives on, in milliseconds (0: no
	// expiry).
	TTLMillis int64 `json:"ttl_ms"`
}

// maxControlEntries bounds one listing on the control socket.
const maxControlEntries = 1_000_000

// listenControl listens on the unix socket path, mode 0600 (what it
// serves changes state or releases mail), in place of a socket file a
// previous process left: only the holder of the folder's lock calls it.
func listenControl(path string) (net.Listener, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// serveControl serves the admin's requests for st on dir/control.sock
// (mode 0600: it can delete state) until the returned server is closed.
// Only the process that holds the store's lock calls it, so a socket file
// left there is stale.
func serveControl(dir string, st state.Store, log *slog.Logger) (*http.Server, error) {
	path := filepath.Join(dir, controlSocket)
	l, err := listenControl(path)
	if err != nil {
		return nil, &stateDirError{err}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/entries", func(w http.ResponseWriter, r *http.Request) {
		out := []jsonEntry{}
		err := st.Entries(r.Context(), r.URL.Query().Get("prefix"), func(e state.Entry) bool {
			out = append(out, jsonEntry{Key: e.Key, Value: e.Value, TTLMillis: e.TTL.Milliseconds()})
			return len(out) < maxControlEntries
		})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	})
	mux.HandleFunc("POST /v1/delete", func(w http.ResponseWriter, r *http.Request) {
		ok, err := st.Delete(r.Context(), r.URL.Query().Get("key"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]bool{"deleted": ok})
	})
	srv := &http.Server{Handler: mux, ReadTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second, MaxHeaderBytes: 16 << 10}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("state: control socket failed", "path", path, "err", err)
		}
	}()
	return srv, nil
}

// controlClient talks to a running serve over its control socket.
type controlClient struct {
	http *http.Client
}

// dialControl connects to the control socket in dir; ok is false when no
// server listens there.
func dialControl(dir string) (*controlClient, bool) {
	path := filepath.Join(dir, controlSocket)
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return nil, false
	}
	c.Close()
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}
	return &controlClient{http: &http.Client{Transport: tr, Timeout: 30 * time.Second}}, true
}

// maxControlReply bounds what the admin reads from the socket.
const maxControlReply = 256 << 20

func (c *controlClient) do(method, path string, query map[string]string, v any) error {
	req, err := http.NewRequest(method, "http://mxguard"+path, nil)
	if err != nil {
		return err
	}
	q := req.URL.Query()
	for k, val := range query {
		q.Set(k, val)
	}
	req.URL.RawQuery = q.Encode()
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	defer resp.Body.Close()
	body := http.MaxBytesReader(nil, resp.Body, maxControlReply)
	if resp.StatusCode != http.StatusOK {
		var b [512]byte
		n, _ := body.Read(b[:])
		return fmt.Errorf("control socket: %s: %s", resp.Status, b[:n])
	}
	if err := json.NewDecoder(body).Decode(v); err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	return nil
}

// Entries lists the entries under prefix.
func (c *controlClient) Entries(prefix string) ([]state.Entry, error) {
	var got []jsonEntry
	if err := c.do("GET", "/v1/entries", map[string]string{"prefix": prefix}, &got); err != nil {
		return nil, err
	}
	out := make([]state.Entry, len(got))
	for i, e := range got {
		out[i] = state.Entry{Key: e.Key, Value: e.Value, TTL: time.Duration(e.TTLMillis) * time.Millisecond}
	}
	return out, nil
}

// Delete deletes key.
func (c *controlClient) Delete(key string) (bool, error) {
	var got map[string]bool
	if err := c.do("POST", "/v1/delete", map[string]string{"key": key}, &got); err != nil {
		return false, err
	}
	return got["deleted"], nil
}

// Close releases the client.
func (c *controlClient) Close() error {
	c.http.CloseIdleConnections()
	return nil
}
