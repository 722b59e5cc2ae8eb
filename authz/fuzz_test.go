package authz

import (
	"strings"
	"testing"
)

// FuzzCheck: whatever the path, cookies and headers, a request without a
// valid session is never allowed, never panics, never gets a gRPC error and
// never receives a session cookie.
func FuzzCheck(f *testing.F) {
	s, jar := newTestServer(f, Config{SkipProviderButton: true}, &stubIdP{}, nil)
	good := sessionCookie(f, jar, alice())
	f.Add("GET", "/", "_oauth2_proxy=abc", "text/html")
	f.Add("POST", "/oauth2/callback?code=x&state=y", good[:len(good)/2], "*/*")
	f.Add("GET", "/oauth2/start?rd=//evil", "_oauth2_proxy_0=a; _oauth2_proxy_1=b", "")
	f.Add("GET", "/oauth2/sign_out?rd=https://evil", "", "text/html")
	f.Add("GET", "/oauth2/userinfo", "_oauth2_proxy_csrf_abc=1", "")
	f.Fuzz(func(t *testing.T, method, path, cookie, accept string) {
		if strings.Contains(cookie, good) {
			return // the one valid session may be allowed
		}
		resp, err := s.Check(t.Context(), envoyRequest(method, path, map[string]string{"cookie": cookie, "accept": accept}))
		if err != nil {
			t.Fatalf("gRPC error: %v", err)
		}
		if resp.GetStatus().GetCode() == 0 {
			t.Fatalf("allowed without a session: %s %q cookie=%q", method, path, cookie)
		}
		if hasSessionCookie(resp.GetDeniedResponse().GetHeaders()) {
			t.Fatalf("a session cookie was issued: %s %q", method, path)
		}
	})
}
