package authz

import (
	"context"
	"errors"
	"testing"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/oidcflow"
)

type stubBearer struct {
	b   *oidcflow.Bearer
	err error
}

func (s stubBearer) Authenticate(context.Context, string) (*oidcflow.Bearer, error) {
	return s.b, s.err
}

func TestBearerAndRoutePolicy(t *testing.T) {
	reader := &oidcflow.Bearer{Identity: oidcflow.Identity{User: "u", Email: "u@example.com", EmailVerified: true, Groups: []string{"reader"}}, Scopes: []string{"openid", "read"}, Via: "jwt"}
	// Every 401 where bearer tokens are taken names the protected-resource metadata (resource.go).
	const rm = `resource_metadata="https://app.example.com/.well-known/oauth-protected-resource/api/x"`
	cases := []struct {
		name       string
		bearer     stubBearer
		ext        map[string]string
		header     map[string]string
		wantAllow  bool
		wantStatus int
		wantAuthn  string
	}{
		{"valid bearer", stubBearer{b: reader}, nil, map[string]string{"authorization": "Bearer t"}, true, 0, ""},
		{"scheme is case-insensitive", stubBearer{b: reader}, nil, map[string]string{"authorization": "bearer t"}, true, 0, ""},
		{"invalid bearer", stubBearer{err: oidcflow.ErrInvalidToken}, nil, map[string]string{"authorization": "Bearer t"}, false, 401, `Bearer error="invalid_token", ` + rm},
		{"IdP unavailable", stubBearer{err: oidcflow.ErrIdPUnavailable}, nil, map[string]string{"authorization": "Bearer t"}, false, 503, ""},
		{"IdP too slow", stubBearer{err: errors.Join(oidcflow.ErrIdPUnavailable, context.DeadlineExceeded)}, nil, map[string]string{"authorization": "Bearer t"}, false, 504, ""},
		{"introspection budget spent: retry, don't drop the token", stubBearer{err: oidcflow.ErrOverBudget}, nil, map[string]string{"authorization": "Bearer t"}, false, 503, ""},
		{"route groups: in", stubBearer{b: reader}, map[string]string{"allowed_groups": "reader,admin"}, map[string]string{"authorization": "Bearer t"}, true, 0, ""},
		{"route groups: out", stubBearer{b: reader}, map[string]string{"allowed_groups": "admin"}, map[string]string{"authorization": "Bearer t"}, false, 403, `Bearer error="insufficient_scope"`},
		{"required scopes: granted", stubBearer{b: reader}, map[string]string{"required_scopes": "openid read"}, map[string]string{"authorization": "Bearer t"}, true, 0, ""},
		{"required scopes: missing", stubBearer{b: reader}, map[string]string{"required_scopes": "read,write"}, map[string]string{"authorization": "Bearer t"}, false, 403, `Bearer error="insufficient_scope"`},
		{"bearer-only without a token", stubBearer{b: reader}, map[string]string{"auth": "bearer-only"}, map[string]string{"accept": "text/html"}, false, 401, "Bearer " + rm},
		{"session-only ignores the bearer", stubBearer{b: reader}, map[string]string{"auth": "session-only"}, map[string]string{"authorization": "Bearer t", "accept": "application/json"}, false, 401, "Bearer"},
		{"unknown auth value fails closed", stubBearer{b: reader}, map[string]string{"auth": "anyone"}, map[string]string{"authorization": "Bearer t"}, false, 500, ""},
		{"Basic auth is not a bearer", stubBearer{b: reader}, nil, map[string]string{"authorization": "Basic dTpw", "accept": "application/json"}, false, 401, "Bearer " + rm},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newTestServer(t, Config{}, &stubIdP{}, nil)
			s.bearerAuth = tc.bearer
			req := envoyRequest("GET", "/api/x", tc.header)
			req.Attributes.ContextExtensions = tc.ext
			resp, err := s.Check(t.Context(), req)
			if err != nil {
				t.Fatal(err)
			}
			allowed := resp.GetStatus().GetCode() == 0
			if allowed != tc.wantAllow {
				t.Fatalf("Check(%s): allowed=%v, want %v (%v)", tc.name, allowed, tc.wantAllow, resp)
			}
			if allowed {
				return
			}
			d := resp.GetDeniedResponse()
			if int(d.GetStatus().GetCode()) != tc.wantStatus {
				t.Fatalf("Check(%s): status %d, want %d", tc.name, d.GetStatus().GetCode(), tc.wantStatus)
			}
			var authn string
			for _, h := range d.GetHeaders() {
				if h.GetHeader().GetKey() == "www-authenticate" {
					authn = h.GetHeader().GetValue()
				}
			}
			if authn != tc.wantAuthn {
				t.Fatalf("Check(%s): www-authenticate %q, want %q", tc.name, authn, tc.wantAuthn)
			}
		})
	}
}
