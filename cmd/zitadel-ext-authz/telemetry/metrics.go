// Package telemetry is what operators see of the server: Prometheus
// metrics (checks by decision and reason, IdP calls, caches, logins,
// refreshes, build info) and OpenTelemetry traces (a span per Check whose
// parent comes from the request's traceparent or B3 headers, child spans
// for every IdP call). Metrics implements authz.Observer and oidcflow's
// observer, so authz and oidcflow stay free of Prometheus and OTel SDKs.
package telemetry

import (
	"context"
	"net/http"
	"runtime"
	"sync"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/backchannel"
)

// Metrics holds the server's Prometheus collectors. Every label value comes
// from a fixed set in the code (decisions, reasons, call names, outcomes):
// never users, paths or tokens.
type Metrics struct {
	reg             *prometheus.Registry
	checks          *prometheus.CounterVec
	duration        *prometheus.HistogramVec
	idpCalls        *prometheus.CounterVec
	idpDuration     *prometheus.HistogramVec
	refreshes       *prometheus.CounterVec
	loginsStarted   *prometheus.CounterVec
	loginsCompleted *prometheus.CounterVec
	reloads         *prometheus.CounterVec
	logouts         *prometheus.CounterVec

	children sync.Map // checkKey → checkChildren, resolved once per label pair
}

type checkKey struct {
	app, decision string
	reason        authz.Reason
	rule          string
}

type checkChildren struct {
	count   prometheus.Counter
	latency prometheus.Observer
	login   prometheus.Counter // logins_started or _completed for those reasons; nil otherwise
}

// NoApp labels the Checks that reached no app (apps list: an unknown host
// without a default app, or an unknown app name on a route).
const NoApp = "none"

// prefix names every metric of ours.
const prefix = "zitadel_ext_authz_"

func counter(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: prefix + name, Help: help}, labels)
}

func histogram(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: prefix + name, Help: help, Buckets: buckets}, labels)
}

// NewMetrics registers the collectors on a new registry.
func NewMetrics(version string) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		checks: counter("checks_total", "Checks answered, by app (default: the top-level keys' app; none: no app), decision (allow, redirect, unauthorized, forbidden, page, error) and reason (session, no_session, not_in_group, bad_state, …).",
			"app", "decision", "reason"),
		duration: histogram("check_duration_seconds", "Time to answer a Check, by app and decision.",
			[]float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5}, "app", "decision"),
		idpCalls: counter("idp_calls_total", "Token verifications and IdP calls, by app, call (jwt, introspection, refresh) and outcome (active, inactive, ok, rejected, error; for refresh also grace and shared: collapsed, no call; over_budget: an unknown token refused without a call, past introspection_budget).",
			"app", "call", "outcome"),
		idpDuration: histogram("idp_call_duration_seconds", "Duration of token verifications and IdP calls, by call.",
			[]float64{0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}, "call"),
		refreshes:       counter("refreshes_total", "Session refreshes, by app and outcome (ok, rejected, error; grace and shared were answered without an IdP call).", "app", "outcome"),
		loginsStarted:   counter("logins_started_total", "Redirects to the IdP's authorization endpoint, by app.", "app"),
		loginsCompleted: counter("logins_completed_total", "Callbacks that created a session, by app.", "app"),
		reloads:         counter("config_reloads_total", "Configuration reloads, by outcome (applied, refused).", "outcome"),
		logouts: counter("backchannel_logouts_total", "Back-channel logout requests, by outcome (ended, invalid_request, invalid_logout_token, replayed_logout_token, idp_unavailable, session_store_unavailable).",
			"outcome"),
	}
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        prefix + "build_info",
		Help:        "Always 1; the labels say which build runs.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
	})
	buildInfo.Set(1)
	m.reg.MustRegister(m.checks, m.duration, m.idpCalls, m.idpDuration, m.refreshes, m.loginsStarted, m.loginsCompleted, m.reloads, m.logouts, buildInfo,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, r := range []string{"applied", "refused"} {
		m.reloads.WithLabelValues(r)
	}
	for _, o := range backchannel.Outcomes {
		m.logouts.WithLabelValues(o)
	}
	return m
}

// AppMetrics is the Observer of one app's Checks (authz.Observer) and its IdP
// calls (ObserveIdP); its name labels them. Names come from the
// configuration only (never from a request), so the labels stay bounded.
type AppMetrics struct {
	m    *Metrics
	name string
}

// ForApp observes the app called name (config.DefaultAppName for the
// top-level keys' app, NoApp for Checks no app answered).
func (m *Metrics) ForApp(name string) AppMetrics { return AppMetrics{m, name} }

// Decided implements authz.Observer: it counts the Check and, when the
// Check is traced, puts the app and the decision on its span.
func (a AppMetrics) Decided(ctx context.Context, d *authz.Decision, elapsed time.Duration) {
	m := a.m
	kind := d.Kind()
	k := checkKey{a.name, kind, d.Reason, d.Rule}
	c, ok := m.children.Load(k)
	if !ok {
		// Resolved once per label set: an unauthenticated flood is a
		// login_redirect per Check.
		cc := checkChildren{count: m.checks.WithLabelValues(a.name, kind, reasonLabel(d)), latency: m.duration.WithLabelValues(a.name, kind)}
		switch d.Reason {
		case authz.ReasonLoginRedirect:
			cc.login = m.loginsStarted.WithLabelValues(a.name)
		case authz.ReasonLoginCompleted:
			cc.login = m.loginsCompleted.WithLabelValues(a.name)
		}
		c, _ = m.children.LoadOrStore(k, cc)
	}
	cc := c.(checkChildren)
	cc.count.Inc()
	cc.latency.Observe(elapsed.Seconds())
	if cc.login != nil {
		cc.login.Inc()
	}
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(attribute.String("authz.app", a.name), attribute.String("authz.decision", kind), attribute.String("authz.reason", reasonLabel(d)))
		if !d.Allow {
			span.SetAttributes(attribute.Int("http.response.status_code", d.Status))
		}
		if kind == "error" {
			span.SetStatus(codes.Error, string(d.Reason))
		}
	}
}

// ObserveIdP is oidcflow's observer. Cache lookups are counted by the
// caches' own metrics (WatchCache), so they are skipped here.
func (a AppMetrics) ObserveIdP(call, outcome string, d time.Duration) {
	m := a.m
	if call == "token_cache" {
		return
	}
	m.idpCalls.WithLabelValues(a.name, call, outcome).Inc()
	if call == "refresh" {
		m.refreshes.WithLabelValues(a.name, outcome).Inc()
	}
	if d > 0 { // collapsed refreshes (grace, shared) made no call of their own
		m.idpDuration.WithLabelValues(call).Observe(d.Seconds())
	}
}

// WatchReady exports ready (what /readyz answers) as the gauge
// zitadel_ext_authz_ready (1 ready, 0 not), read at each scrape, so
// alerts can see a replica that stays unready.
func (m *Metrics) WatchReady(ready func() (bool, string)) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: prefix + "ready",
		Help: "1 when the server is ready (/readyz answers 200: IdPs discovered, session store reachable, not shutting down), else 0.",
	}, func() float64 {
		if ok, _ := ready(); ok {
			return 1
		}
		return 0
	}))
}

// LogoutOutcome counts a back-channel logout request by its outcome
// (backchannel.Outcomes).
func (m *Metrics) LogoutOutcome(outcome string) { m.logouts.WithLabelValues(outcome).Inc() }

// Reloaded counts a configuration reload.
func (m *Metrics) Reloaded(applied bool) {
	if applied {
		m.reloads.WithLabelValues("applied").Inc()
	} else {
		m.reloads.WithLabelValues("refused").Inc()
	}
}

// WatchCache exports a ristretto cache's hits, misses and evictions.
func (m *Metrics) WatchCache(name string, cm *ristretto.Metrics) {
	for _, c := range []struct {
		what string
		f    func() uint64
	}{{"hits", cm.Hits}, {"misses", cm.Misses}, {"evictions", cm.KeysEvicted}} {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        prefix + "cache_" + c.what + "_total",
			Help:        "Cache " + c.what + ", by cache (session, token, upstream_token).",
			ConstLabels: prometheus.Labels{"cache": name},
		}, func() float64 { return float64(c.f()) }))
	}
}

// Handler serves the registry in Prometheus' text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// reasonLabel is the reason label of d: its reason, and the rule that
// decided it when one did ("rule_denied rule=owner_or_admin"). Rules come
// from the configuration, so the label set stays bounded.
func reasonLabel(d *authz.Decision) string {
	if d.Rule == "" {
		return string(d.Reason)
	}
	return string(d.Reason) + " rule=" + d.Rule
}
