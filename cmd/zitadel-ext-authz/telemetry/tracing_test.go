package telemetry

import (
	"context"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/cmd/zitadel-ext-authz/config"
)

// readKeys is a propagation carrier that records the keys read from it
// and has only a traceparent, so every propagator reads all it can.
type readKeys []string

func (r *readKeys) Get(key string) string {
	*r = append(*r, key)
	if key == "traceparent" {
		return "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	}
	return ""
}

func (r *readKeys) Set(string, string) {}
func (r *readKeys) Keys() []string     { return nil }

// The headers the Check span's parent is read from are config.TraceHeaders,
// the list check-config and check-envoy hold Envoy's allowed_headers to.
func TestTraceHeaders(t *testing.T) {
	tr := NewTracingWith(sdktrace.NewSimpleSpanProcessor(tracetest.NewInMemoryExporter()), 1, "test")
	var read readKeys
	tr.propagator.Extract(context.Background(), &read)
	slices.Sort(read)
	want := slices.Sorted(slices.Values(config.TraceHeaders))
	if diff := cmp.Diff(want, []string(slices.Compact(read))); diff != "" {
		t.Errorf("the propagator reads other headers than config.TraceHeaders (-TraceHeaders +read):\n%s", diff)
	}
}
