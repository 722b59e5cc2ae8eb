package config

import (
	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz"
)

// TraceHeaders are the request headers the tracing (otlp_endpoint) reads
// the user's trace context from: W3C trace context, then B3 (one header
// or several). telemetry's tests hold them equal to what its propagator
// reads.
var TraceHeaders = []string{"traceparent", "tracestate", "b3", "x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled", "x-b3-flags"}

// whyTrace is why the tracing reads TraceHeaders.
const whyTrace = "the trace context of the user's request, the parent of the Check's span (otlp_endpoint); without it the span hangs off Envoy's own, or nothing"

// RequestHeaders lists the request headers Check reads under c, each once
// with why (authz.RequestHeaders): over every app, since one Envoy
// ext_authz filter sends to them all, and with otlp_endpoint the trace
// context. Start-up logs it, check-config prints it, and check-envoy
// holds Envoy's allowed_headers to it.
func (c *Config) RequestHeaders() []authz.HeaderNeed {
	var lists [][]authz.HeaderNeed
	for _, a := range c.AllApps() {
		lists = append(lists, authz.RequestHeaders(a.Authz, a.BearerEnabled))
	}
	if c.OTLPEndpoint != "" {
		trace := make([]authz.HeaderNeed, len(TraceHeaders))
		for i, h := range TraceHeaders {
			trace[i] = authz.HeaderNeed{Name: h, Why: whyTrace}
		}
		lists = append(lists, trace)
	}
	return authz.MergeHeaderNeeds(lists...)
}

// HeaderNames are the names of needs, in order.
func HeaderNames(needs []authz.HeaderNeed) []string {
	out := make([]string, len(needs))
	for i, n := range needs {
		out[i] = n.Name
	}
	return out
}
