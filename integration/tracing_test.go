package integration_test

import (
	"net/http"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/cmd/zitadel-ext-authz/telemetry"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/devidp"
)

// A login through the Envoy emulator with tracing on: each Check is a span
// whose parent is the request's traceparent (or B3) header, carrying the
// decision; the IdP calls made inside a Check are its children.
func TestTracingSpans(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tracing := telemetry.NewTracingWith(sdktrace.NewSimpleSpanProcessor(exp), 1, "test")
	t.Cleanup(func() { tracing.Shutdown(t.Context()) })
	ip := startInProcess(t, inprocOptions{tracing: tracing, metrics: telemetry.NewMetrics("test")})

	// Discovery and the JWKS load happened at start-up, outside any Check.
	if s := spanNamed(exp.GetSpans(), "idp discovery"); s == nil {
		t.Error("no span for discovery")
	}
	if s := spanNamed(exp.GetSpans(), "idp jwks"); s == nil {
		t.Error("no span for the JWKS load")
	}
	exp.Reset()

	b := newBrowser(t, "alice", "alice-password")
	// 1. The first request, with a W3C traceparent: a login redirect.
	const traceA = "4bf92f3577b34da6a3ce929d0e0e4736"
	resp := b.do(http.MethodGet, ip.Front+"/landing", http.Header{"Traceparent": {"00-" + traceA + "-00f067aa0ba902b7-01"}})
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("first request: %s", describe(resp))
	}
	check := spanNamed(exp.GetSpans(), "ext_authz Check")
	if check == nil {
		t.Fatal("no span for the Check")
	}
	if check.SpanContext.TraceID().String() != traceA || check.Parent.SpanID().String() != "00f067aa0ba902b7" {
		t.Errorf("Check span trace %s parent %s, want the traceparent's", check.SpanContext.TraceID(), check.Parent.SpanID())
	}
	if attr(check, "authz.decision") != "redirect" || attr(check, "authz.reason") != "login_redirect" {
		t.Errorf("Check span attributes %v", check.Attributes)
	}
	exp.Reset()

	// 2. The callback, with B3 headers: the code exchange is a child span.
	cb, err := devidp.LoginForm(b.client, resp.Header.Get("Location"), b.user, b.password)
	if err != nil {
		t.Fatal(err)
	}
	const traceB = "80f198ee56343ba864fe8b2a57d3eff7"
	resp = b.do(http.MethodGet, cb.String(), http.Header{"X-B3-Traceid": {traceB}, "X-B3-Spanid": {"e457b5a2e4d86bd1"}, "X-B3-Sampled": {"1"}})
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("callback: %s", describe(resp))
	}
	spans := exp.GetSpans()
	check = spanNamed(spans, "ext_authz Check")
	token := spanNamed(spans, "idp token")
	if check == nil || token == nil {
		t.Fatalf("spans %v, want the Check and its token call", names(spans))
	}
	if check.SpanContext.TraceID().String() != traceB || attr(check, "authz.decision") != "redirect" || attr(check, "authz.reason") != "login_completed" {
		t.Errorf("callback Check span: trace %s, attributes %v", check.SpanContext.TraceID(), check.Attributes)
	}
	if token.Parent.SpanID() != check.SpanContext.SpanID() || token.SpanContext.TraceID() != check.SpanContext.TraceID() {
		t.Error("the token call is not a child of the Check span")
	}
	if strings.Contains(attr(check, "url.path"), "code=") {
		t.Error("the span carries the authorization code")
	}
	exp.Reset()

	// 3. The session at work, no trace headers: a root span (sampled at
	// the ratio, 1 here), allowed, and no IdP call.
	resp = b.get(ip.Front + "/landing")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("with the session: %s", describe(resp))
	}
	spans = exp.GetSpans()
	check = spanNamed(spans, "ext_authz Check")
	if len(spans) != 1 || check == nil || check.Parent.IsValid() || attr(check, "authz.decision") != "allow" || attr(check, "authz.reason") != "session" {
		t.Errorf("untraced request with a session: spans %v", names(spans))
	}
	exp.Reset()

	// 4. Sign-out revokes the refresh token: a child span too.
	const traceC = "0af7651916cd43dd8448eb211c80319c"
	resp = b.do(http.MethodGet, ip.Front+"/oauth2/sign_out", http.Header{"Traceparent": {"00-" + traceC + "-b7ad6b7169203331-01"}})
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("sign-out: %s", describe(resp))
	}
	spans = exp.GetSpans()
	check, revoke := spanNamed(spans, "ext_authz Check"), spanNamed(spans, "idp revocation")
	if check == nil || revoke == nil || revoke.Parent.SpanID() != check.SpanContext.SpanID() || check.SpanContext.TraceID().String() != traceC {
		t.Errorf("sign-out spans %v: want the revocation as a child of the Check", names(spans))
	}
	exp.Reset()
	b = newBrowser(t, "alice", "alice-password")
	b.follow(ip.Front + "/")
	exp.Reset()

	// 5. A sampled-out parent (flags 00) is respected: no span.
	resp = b.do(http.MethodGet, ip.Front+"/landing", http.Header{"Traceparent": {"00-" + traceA + "-00f067aa0ba902b7-00"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("sampled-out request: %s", describe(resp))
	}
	if spans := exp.GetSpans(); len(spans) != 0 {
		t.Errorf("a sampled-out trace recorded %v", names(spans))
	}
}

func spanNamed(spans tracetest.SpanStubs, name string) *tracetest.SpanStub {
	for i := range spans {
		if spans[i].Name == name {
			return &spans[i]
		}
	}
	return nil
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

func attr(s *tracetest.SpanStub, key string) string {
	for _, a := range s.Attributes {
		if a.Key == attribute.Key(key) {
			return a.Value.String()
		}
	}
	return ""
}
