package main

import (
	"context"
	"net/http"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
)

// metrics counts Checks by decision and times them. The decision label is
// read off the CheckResponse, so authz stays free of Prometheus.
type metrics struct {
	checks      *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	byDecision  map[string]decisionMetrics // resolved once: no label lookup per Check
	idpCalls    *prometheus.CounterVec
	idpDuration *prometheus.HistogramVec
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zitadel_ext_authz_checks_total",
			Help: "Checks answered, by decision (allow, redirect, unauthorized, forbidden, page, error).",
		}, []string{"decision"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "zitadel_ext_authz_check_duration_seconds",
			Help:    "Time to answer a Check, by decision.",
			Buckets: []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5},
		}, []string{"decision"}),
		idpCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zitadel_ext_authz_idp_calls_total",
			Help: "Token verifications and IdP calls, by call (jwt, introspection, refresh) and outcome (active, inactive, ok, rejected, error; for refresh also grace and shared: collapsed, no call).",
		}, []string{"call", "outcome"}),
		idpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "zitadel_ext_authz_idp_call_duration_seconds",
			Help:    "Duration of token verifications and IdP calls, by call.",
			Buckets: []float64{0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5},
		}, []string{"call"}),
	}
	reg.MustRegister(m.checks, m.duration, m.idpCalls, m.idpDuration, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.byDecision = map[string]decisionMetrics{}
	for _, d := range []string{"allow", "redirect", "unauthorized", "forbidden", "page", "error"} {
		m.byDecision[d] = decisionMetrics{m.checks.WithLabelValues(d), m.duration.WithLabelValues(d)}
	}
	return m
}

type decisionMetrics struct {
	count   prometheus.Counter
	latency prometheus.Observer
}

// observeIdP is oidcflow's observer. Cache lookups are counted by the
// caches' own metrics (watchCache), so they are skipped here.
func (m *metrics) observeIdP(call, outcome string, d time.Duration) {
	if call == "token_cache" {
		return
	}
	m.idpCalls.WithLabelValues(call, outcome).Inc()
	if d > 0 { // collapsed refreshes (grace, shared) made no call of their own
		m.idpDuration.WithLabelValues(call).Observe(d.Seconds())
	}
}

// watchCache exports a ristretto cache's hits, misses and evictions.
func (m *metrics) watchCache(reg *prometheus.Registry, name string, cm *ristretto.Metrics) {
	for _, c := range []struct {
		what string
		f    func() uint64
	}{{"hits", cm.Hits}, {"misses", cm.Misses}, {"evictions", cm.KeysEvicted}} {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "zitadel_ext_authz_cache_" + c.what + "_total",
			Help:        "Cache " + c.what + ", by cache (session, token).",
			ConstLabels: prometheus.Labels{"cache": name},
		}, func() float64 { return float64(c.f()) }))
	}
}

func (m *metrics) interceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if info.FullMethod != authv3.Authorization_Check_FullMethodName {
		return handler(ctx, req)
	}
	start := time.Now()
	resp, err := handler(ctx, req)
	decision := "error"
	if cr, ok := resp.(*authv3.CheckResponse); ok && err == nil {
		decision = decisionOf(cr)
	}
	dm := m.byDecision[decision]
	dm.count.Inc()
	dm.latency.Observe(time.Since(start).Seconds())
	return resp, err
}

// decisionOf labels a CheckResponse.
func decisionOf(r *authv3.CheckResponse) string {
	if r.GetStatus().GetCode() == 0 {
		return "allow"
	}
	switch code := int(r.GetDeniedResponse().GetStatus().GetCode()); {
	case code == 302 || code == 303:
		return "redirect"
	case code == 401:
		return "unauthorized"
	case code == 403:
		return "forbidden"
	case code >= 200 && code < 300:
		return "page"
	default:
		return "error"
	}
}

func metricsHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}
