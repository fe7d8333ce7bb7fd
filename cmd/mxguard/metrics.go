package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// serveMetrics starts the HTTP endpoint of the config's metrics section:
// /metrics for Prometheus, /healthz (the process answers) and /readyz (the
// backend accepts a connection and rules are loaded), for load balancers
// and orchestrators.
func (in *instance) serveMetrics(addr string, profiles bool) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(in.metrics.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		rt := in.cur.Load()
		if rt.eng.Rules() == nil {
			http.Error(w, "no rules loaded", http.StatusServiceUnavailable)
			return
		}
		if err := rt.fwd.Ping(ctx); err != nil {
			http.Error(w, "backend unreachable: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	if profiles {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	in.http = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	in.log.Info("metrics endpoint", "addr", l.Addr().String())
	go func() {
		if err := in.http.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			in.log.Error("metrics endpoint failed", "err", err)
		}
	}()
	return nil
}
