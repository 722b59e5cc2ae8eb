package telemetry

import (
	"context"
	"net/http"
	"strings"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/contrib/propagators/b3"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/oidcflow"
)

// TracingConfig says where spans go. An empty Endpoint means no tracing.
type TracingConfig struct {
	Endpoint    string  // OTLP/gRPC collector, host:port
	Insecure    bool    // plain-text gRPC to the collector
	SampleRatio float64 // for Checks without a sampled parent
	Version     string
}

// Tracing makes the spans: one per Check, children for IdP calls.
type Tracing struct {
	provider   *sdktrace.TracerProvider
	tracer     trace.Tracer
	propagator propagation.TextMapPropagator
}

// NewTracing exports over OTLP/gRPC to cfg.Endpoint.
func NewTracing(ctx context.Context, cfg TracingConfig) (*Tracing, error) {
	opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(cfg.Endpoint)}
	if cfg.Insecure {
		opts = append(opts, otlptracegrpc.WithInsecure())
	}
	exp, err := otlptracegrpc.New(ctx, opts...)
	if err != nil {
		return nil, err
	}
	return NewTracingWith(sdktrace.NewBatchSpanProcessor(exp), cfg.SampleRatio, cfg.Version), nil
}

// NewTracingWith sends spans to processor (tests use the SDK's in-memory
// exporter through a syncer).
func NewTracingWith(processor sdktrace.SpanProcessor, sampleRatio float64, version string) *Tracing {
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSpanProcessor(processor),
		// Envoy's (or the caller's) sampling decision wins; Checks without
		// a parent are sampled at the ratio.
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(sampleRatio))),
		sdktrace.WithResource(resource.NewSchemaless(
			attribute.String("service.name", "zitadel-ext-authz"),
			attribute.String("service.version", version),
		)),
	)
	return &Tracing{
		provider: tp,
		tracer:   tp.Tracer("github.com/zitadel-ext-authz/zitadel-ext-authz"),
		// W3C traceparent first, then B3 (single or multi header).
		propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, b3.New(b3.WithInjectEncoding(b3.B3MultipleHeader))),
	}
}

// Shutdown flushes buffered spans.
func (t *Tracing) Shutdown(ctx context.Context) error { return t.provider.Shutdown(ctx) }

// UnaryInterceptor starts the span of each Check. Its parent is the trace
// context in the checked request's headers (the user's request, as Envoy
// saw it), else the one in the gRPC metadata (Envoy's own ext_authz span).
func (t *Tracing) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		cr, ok := req.(*authv3.CheckRequest)
		if !ok || info.FullMethod != authv3.Authorization_Check_FullMethodName {
			return handler(ctx, req)
		}
		h := cr.GetAttributes().GetRequest().GetHttp()
		parent := t.propagator.Extract(ctx, propagation.MapCarrier(h.GetHeaders()))
		if !trace.SpanContextFromContext(parent).IsValid() {
			if md, ok := metadata.FromIncomingContext(ctx); ok {
				parent = t.propagator.Extract(ctx, metadataCarrier(md))
			}
		}
		path, _, _ := strings.Cut(h.GetPath(), "?") // the query may carry an authorization code
		ctx, span := t.tracer.Start(parent, "ext_authz Check",
			trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(
				attribute.String("http.request.method", h.GetMethod()),
				attribute.String("url.path", path),
				attribute.String("server.address", h.GetHost()),
				attribute.String("http.request.id", h.GetId()),
			))
		defer span.End()
		return handler(ctx, req)
	}
}

// Transport wraps the IdP client's transport: every IdP call becomes a
// child span named after the call ("idp token", "idp jwks", …).
func (t *Tracing) Transport(rt http.RoundTripper) http.RoundTripper {
	return otelhttp.NewTransport(rt,
		otelhttp.WithTracerProvider(t.provider),
		otelhttp.WithPropagators(t.propagator),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			if name := oidcflow.CallName(r); name != "" {
				return "idp " + name
			}
			return "idp " + r.Method
		}),
	)
}

// metadataCarrier reads gRPC metadata as a TextMapCarrier.
type metadataCarrier metadata.MD

func (c metadataCarrier) Get(key string) string {
	if v := metadata.MD(c).Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}
func (c metadataCarrier) Set(key, value string) { metadata.MD(c).Set(key, value) }
func (c metadataCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}
