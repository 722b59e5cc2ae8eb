package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"google.golang.org/grpc"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/cmd/zitadel-ext-authz/config"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/cmd/zitadel-ext-authz/telemetry"
)

// tracingFlush bounds how long the spans still buffered may take to
// reach the collector at exit.
const tracingFlush = 5 * time.Second

// telemetryUnit is the metrics registry and, with otlp_endpoint, the
// tracer. Its Stop flushes the spans, after every other unit stopped, so
// the spans of the last Checks go out too.
type telemetryUnit struct {
	metrics *telemetry.Metrics
	tracing *telemetry.Tracing // nil: tracing off
}

// newTelemetry builds the metrics and, with otlp_endpoint, the OTLP
// exporter (no I/O: it connects when the first spans go out).
func newTelemetry(ctx context.Context, cfg *config.Config, logger *slog.Logger) (*telemetryUnit, error) {
	u := &telemetryUnit{metrics: telemetry.NewMetrics(version)}
	if cfg.OTLPEndpoint == "" {
		return u, nil
	}
	tracing, err := telemetry.NewTracing(ctx, telemetry.TracingConfig{Endpoint: cfg.OTLPEndpoint, Insecure: cfg.OTLPInsecure, SampleRatio: cfg.TraceSampleRatio, Version: version})
	if err != nil {
		return nil, fmt.Errorf("otlp_endpoint: %w", err)
	}
	u.tracing = tracing
	logger.Info("tracing on", "otlp_endpoint", cfg.OTLPEndpoint, "trace_sample_ratio", cfg.TraceSampleRatio)
	return u, nil
}

// transport wraps the IdP client's transport in spans; nil without tracing.
func (u *telemetryUnit) transport() func(http.RoundTripper) http.RoundTripper {
	if u.tracing == nil {
		return nil
	}
	return u.tracing.Transport
}

// interceptors open a span per Check; none without tracing.
func (u *telemetryUnit) interceptors() []grpc.UnaryServerInterceptor {
	if u.tracing == nil {
		return nil
	}
	return []grpc.UnaryServerInterceptor{u.tracing.UnaryInterceptor()}
}

// Start does nothing: the exporter sends as spans end.
func (u *telemetryUnit) Start(context.Context) error { return nil }

// Stop flushes the spans still buffered, within tracingFlush.
func (u *telemetryUnit) Stop(ctx context.Context) {
	if u.tracing == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, tracingFlush)
	defer cancel()
	u.tracing.Shutdown(ctx)
}
