package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// stateMetrics are the state store's collectors (package
// mxguard/internal/state): how long its operations take and how often
// they fail, by store and operation, and the fallback from a shared store
// to this instance's memory.
type stateMetrics struct {
	latency     *prometheus.HistogramVec
	errors      *prometheus.CounterVec
	episodes    prometheus.Counter
	fallbackOps *prometheus.CounterVec
}

func newStateMetrics(r *prometheus.Registry) *stateMetrics {
	s := &stateMetrics{
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "mxguard_state_operation_seconds",
			Help:    "Time a state store operation took, by store (embedded, redis) and operation.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2, 16)}, []string{"store", "op"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mxguard_state_errors_total",
			Help: "State store operations that failed, by store and operation."}, []string{"store", "op"}),
		episodes: prometheus.NewCounter(prometheus.CounterOpts{Name: "mxguard_state_fallback_episodes_total",
			Help: "Times the shared store (Redis) failed and this instance's memory started answering."}),
		fallbackOps: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mxguard_state_fallback_operations_total",
			Help: "State operations answered from this instance's memory because the shared store failed, by operation."}, []string{"op"}),
	}
	r.MustRegister(s.latency, s.errors, s.episodes, s.fallbackOps)
	return s
}

// StoreOp records one state store operation (state.Observer).
func (m *Metrics) StoreOp(store, op string, took time.Duration, err error) {
	if m == nil {
		return
	}
	m.state.latency.WithLabelValues(store, op).Observe(took.Seconds())
	if err != nil {
		m.state.errors.WithLabelValues(store, op).Inc()
	}
}

// FallbackEpisode counts the start of a fallback episode (state.Observer).
func (m *Metrics) FallbackEpisode() {
	if m != nil {
		m.state.episodes.Inc()
	}
}

// FallbackOp counts an operation answered by the local store
// (state.Observer).
func (m *Metrics) FallbackOp(op string) {
	if m != nil {
		m.state.fallbackOps.WithLabelValues(op).Inc()
	}
}
