// Package metrics holds mxguard's Prometheus metrics. One Metrics value is
// made per process (and one per test) and handed to the proxy, the policy
// engine and the forwarder; a nil *Metrics records nothing, so code that
// has none to hand needs no checks of its own.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the collectors, registered in Registry.
type Metrics struct {
	Registry *prometheus.Registry

	connsOpen    prometheus.Gauge
	connsRefused *prometheus.CounterVec
	transactions *prometheus.CounterVec
	checkResults *prometheus.CounterVec
	checkLatency *prometheus.HistogramVec
	ruleMatches  *prometheus.CounterVec
	backendTime  prometheus.Histogram
	backendErrs  *prometheus.CounterVec
	recordErrs   *prometheus.CounterVec
	state        *stateMetrics
}

// New makes and registers the collectors.
func New() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry: r,
		connsOpen: prometheus.NewGauge(prometheus.GaugeOpts{Name: "mxguard_connections_open",
			Help: "SMTP sessions in progress."}),
		connsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mxguard_connections_refused_total",
			Help: "Connections refused before a transaction, by reason."}, []string{"reason"}),
		transactions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mxguard_transactions_total",
			Help: "Verdict lines written, by final action."}, []string{"action"}),
		checkResults: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mxguard_check_results_total",
			Help: "Check results, by check and result."}, []string{"check", "result"}),
		checkLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "mxguard_check_duration_seconds",
			Help: "Time a check took.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}, []string{"check"}),
		ruleMatches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mxguard_rule_matches_total",
			Help: "Rule matches, by rule and mode (enforce or monitor)."}, []string{"rule", "mode"}),
		backendTime: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "mxguard_backend_delivery_seconds",
			Help: "Time to hand a message to the backend, until its reply.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
		backendErrs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mxguard_backend_errors_total",
			Help: "Deliveries that did not end in a 2xx, by kind (unavailable, connection, refused)."}, []string{"kind"}),
		recordErrs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mxguard_check_record_errors_total",
			Help: "Answers a check could not record for later transactions (a greylist triplet), by check."}, []string{"check"}),
	}
	r.MustRegister(m.connsOpen, m.connsRefused, m.transactions, m.checkResults, m.checkLatency, m.ruleMatches, m.backendTime, m.backendErrs, m.recordErrs,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.state = newStateMetrics(r)
	return m
}

// ConnOpened and ConnClosed track sessions in progress.
func (m *Metrics) ConnOpened() {
	if m != nil {
		m.connsOpen.Inc()
	}
}

// ConnClosed is ConnOpened's pair.
func (m *Metrics) ConnClosed() {
	if m != nil {
		m.connsOpen.Dec()
	}
}

// ConnRefused counts a connection refused before a transaction.
func (m *Metrics) ConnRefused(reason string) {
	if m != nil {
		m.connsRefused.WithLabelValues(reason).Inc()
	}
}

// Transaction counts a verdict line.
func (m *Metrics) Transaction(action string) {
	if m != nil {
		m.transactions.WithLabelValues(action).Inc()
	}
}

// Check counts one check's result and its duration.
func (m *Metrics) Check(name, result string, d time.Duration) {
	if m != nil {
		m.checkResults.WithLabelValues(name, result).Inc()
		m.checkLatency.WithLabelValues(name).Observe(d.Seconds())
	}
}

// CheckRecordError counts a check's answer that could not be recorded.
func (m *Metrics) CheckRecordError(name string) {
	if m != nil {
		m.recordErrs.WithLabelValues(name).Inc()
	}
}

// RuleMatch counts a rule that matched.
func (m *Metrics) RuleMatch(rule, mode string) {
	if m != nil {
		m.ruleMatches.WithLabelValues(rule, mode).Inc()
	}
}

// Backend records one delivery: its duration, and its failure kind ("" when
// the backend answered 2xx).
func (m *Metrics) Backend(d time.Duration, failure string) {
	if m == nil {
		return
	}
	m.backendTime.Observe(d.Seconds())
	if failure != "" {
		m.backendErrs.WithLabelValues(failure).Inc()
	}
}

// DNSStats registers the resolver's cache counters, read when scraped.
func (m *Metrics) DNSStats(stats func() (hits, misses, queries, errors uint64)) {
	if m == nil {
		return
	}
	for _, c := range []struct {
		name, help string
		pick       func(h, mi, q, e uint64) uint64
	}{
		{"mxguard_dns_cache_hits_total", "DNS lookups answered from the cache.", func(h, _, _, _ uint64) uint64 { return h }},
		{"mxguard_dns_cache_misses_total", "DNS lookups not in the cache.", func(_, mi, _, _ uint64) uint64 { return mi }},
		{"mxguard_dns_queries_total", "DNS queries sent.", func(_, _, q, _ uint64) uint64 { return q }},
		{"mxguard_dns_errors_total", "DNS lookups that failed temporarily.", func(_, _, _, e uint64) uint64 { return e }},
	} {
		pick := c.pick
		m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: c.name, Help: c.help}, func() float64 {
			h, mi, q, e := stats()
			return float64(pick(h, mi, q, e))
		}))
	}
}

// SpoolMemory registers the message content held in memory and the budget
// it is held to, read when scraped: an admin sees how close the process
// runs to spilling every message to disk.
func (m *Metrics) SpoolMemory(inUse func() int64, budget int64) {
	if m == nil {
		return
	}
	m.Registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "mxguard_spool_memory_bytes",
			Help: "Message content held in memory, in bytes (spool.memory_budget bounds it)."},
			func() float64 { return float64(inUse()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "mxguard_spool_memory_budget_bytes",
			Help: "spool.memory_budget: past it, messages spill to spool.dir."},
			func() float64 { return float64(budget) }))
}
