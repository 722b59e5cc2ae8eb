package authz

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/oidcflow"
)

// onlyBearer accepts one token.
type onlyBearer struct{ valid string }

func (b onlyBearer) Authenticate(_ context.Context, token string) (*oidcflow.Bearer, error) {
	if token != b.valid {
		return nil, oidcflow.ErrInvalidToken
	}
	return &oidcflow.Bearer{Identity: oidcflow.Identity{User: "svc", Email: "svc@example.com", EmailVerified: true}, Via: "jwt"}, nil
}

// FuzzCheck: whatever the method, path, cookies, authorization and accept
// headers, a request without a valid session or bearer token is never
// allowed, never panics, never gets a gRPC error and never receives a
// session cookie.
func FuzzCheck(f *testing.F) {
	s, jar := newTestServer(f, Config{SkipProviderButton: true}, &stubIdP{}, nil)
	s.bearerAuth = onlyBearer{valid: "good-token"}
	good := sessionCookie(f, jar, alice())
	f.Add("GET", "/", "_oauth2_proxy=abc", "", "text/html")
	f.Add("POST", "/oauth2/callback?code=x&state=y", good[:len(good)/2], "", "*/*")
	f.Add("GET", "/oauth2/start?rd=//evil", "_oauth2_proxy_0=a; _oauth2_proxy_1=b", "", "")
	f.Add("GET", "/oauth2/sign_out?rd=https://evil", "", "", "text/html")
	f.Add("GET", "/oauth2/userinfo", "_oauth2_proxy_csrf_abc=1", "Bearer bad", "")
	f.Add("GET", "/api/x", "", "Bearer good-tokenX", "application/json")
	f.Add("GET", "/%2e%2e/admin", "", "Basic Zm9vOmJhcg==", "")
	f.Fuzz(func(t *testing.T, method, path, cookie, authorization, accept string) {
		if strings.Contains(cookie, good) || strings.Contains(authorization, "good-token") {
			return // the valid session or token may be allowed
		}
		resp, err := s.Check(t.Context(), envoyRequest(method, path, map[string]string{"cookie": cookie, "accept": accept, "authorization": authorization}))
		if err != nil {
			t.Fatalf("gRPC error: %v", err)
		}
		if resp.GetStatus().GetCode() == 0 {
			t.Fatalf("allowed without a session: %s %q cookie=%q authorization=%q", method, path, cookie, authorization)
		}
		if hasSessionCookie(resp.GetDeniedResponse().GetHeaders()) {
			t.Fatalf("a session cookie was issued: %s %q", method, path)
		}
	})
}

// FuzzReturnURL: an accepted rd (or state return URL) is an absolute
// http(s) URL on the request's host or a whitelisted domain, without user
// info, control characters or backslashes, and parses back to that host.
func FuzzReturnURL(f *testing.F) {
	s, _ := newTestServer(f, Config{WhitelistDomains: []string{".trusted.example", "static.example:*"}}, &stubIdP{}, nil)
	r := &Request{Scheme: "https", Host: "app.example.com"}
	for _, seed := range []string{"/", "/a?b=c#d", "//evil.example", "/\\evil.example", "https://app.example.com/x", "https://evil.example/",
		"https://a.trusted.example/", "https://app.example.com@evil.example/", "http://static.example:8443/", "javascript:alert(1)", "/%0d%0aSet-Cookie:x", "https:evil.example"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, rd string) {
		out, ok := s.returnURL(r, rd)
		if !ok {
			return
		}
		if strings.ContainsAny(out, "\\\r\n\t\x00") || strings.HasPrefix(out, "//") {
			t.Fatalf("accepted %q as %q", rd, out)
		}
		u, err := url.Parse(out)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil || u.Host == "" {
			t.Fatalf("accepted %q as %q: not a clean absolute URL", rd, out)
		}
		host := strings.ToLower(u.Hostname())
		if host != "app.example.com" && host != "trusted.example" && !strings.HasSuffix(host, ".trusted.example") && host != "static.example" {
			t.Fatalf("accepted %q: it leads to %q", rd, u.Host)
		}
	})
}
