package telemetry

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz"
)

func TestDecidedCountsByDecisionAndReason(t *testing.T) {
	metrics := NewMetrics("v1.2.3")
	m, other := metrics.ForApp("default"), metrics.ForApp("shop")
	ctx := context.Background()
	other.Decided(ctx, &authz.Decision{Allow: true, Reason: "session"}, time.Millisecond)
	m.Decided(ctx, &authz.Decision{Allow: true, Reason: "session"}, time.Millisecond)
	m.Decided(ctx, &authz.Decision{Status: 302, Reason: "login_redirect"}, time.Millisecond)
	m.Decided(ctx, &authz.Decision{Status: 302, Reason: "login_completed", Subject: "user-1"}, time.Millisecond)
	m.Decided(ctx, &authz.Decision{Status: 403, Reason: "not_in_group", Subject: "user-1"}, time.Millisecond)
	m.ObserveIdP("refresh", "ok", 10*time.Millisecond)
	m.ObserveIdP("refresh", "grace", 0)
	rec := httptest.NewRecorder()
	metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`zitadel_ext_authz_checks_total{app="default",decision="allow",reason="session"} 1`,
		`zitadel_ext_authz_checks_total{app="shop",decision="allow",reason="session"} 1`,
		`zitadel_ext_authz_checks_total{app="default",decision="forbidden",reason="not_in_group"} 1`,
		`zitadel_ext_authz_logins_started_total{app="default"} 1`,
		`zitadel_ext_authz_logins_completed_total{app="default"} 1`,
		`zitadel_ext_authz_refreshes_total{app="default",outcome="ok"} 1`,
		`zitadel_ext_authz_refreshes_total{app="default",outcome="grace"} 1`,
		`zitadel_ext_authz_idp_call_duration_seconds_count{call="refresh"} 1`,
		`zitadel_ext_authz_build_info{goversion="go`,
		`version="v1.2.3"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(string(body), "user-1") {
		t.Error("a subject became a label value")
	}
}

// The observer runs on every Check: an allowed session, and a login
// redirect (what an unauthenticated flood is made of).
func BenchmarkDecided(b *testing.B) {
	m := NewMetrics("bench").ForApp("default")
	ctx := context.Background()
	for _, d := range []*authz.Decision{{Allow: true, Reason: "session"}, {Status: 302, Reason: "login_redirect"}} {
		b.Run(string(d.Reason), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				m.Decided(ctx, d, time.Microsecond)
			}
		})
	}
}
