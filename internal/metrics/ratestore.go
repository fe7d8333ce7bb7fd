package metrics

import "github.com/prometheus/client_golang/prometheus"

// RateStoreErrors registers the count of rate-limit events the state store
// could not decide, read when scraped: each was allowed (mail is never
// refused because the store failed), and each instance limited it on its
// own. A second registration on the same Metrics is ignored.
func (m *Metrics) RateStoreErrors(n func() uint64) {
	if m == nil {
		return
	}
	_ = m.Registry.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "mxguard_rate_limit_store_errors_total",
		Help: "Rate-limit events allowed because the state store did not answer."},
		func() float64 { return float64(n()) }))
}
