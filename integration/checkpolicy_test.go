package integration_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/devidp"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/testkit"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// policyCase is one entry of demo/policy-cases.json: a request, a user of
// the dev IdP (nil: nobody) and the answer Check gives.
type policyCase struct {
	Name   string            `json:"name"`
	URL    string            `json:"url"`
	Method string            `json:"method"`
	API    bool              `json:"api"` // accept: application/json (a bearer token is always an API call)
	Ext    map[string]string `json:"ext"` // the route's context_extensions
	User   *struct {
		Name string `json:"name"`
		Via  string `json:"via"` // session or bearer
	} `json:"user"`
	Expect policyAnswer `json:"expect"`
}

// policyAnswer is what the cases compare: allowed, or the denied status,
// and the reason and rule Check names.
type policyAnswer struct {
	Allow  bool   `json:"allow"`
	Status int    `json:"status"`
	Reason string `json:"reason"`
	Rule   string `json:"rule"`
}

// makeDemo is a running make demo: where its parts listen and its config.
type makeDemo struct {
	front, issuer, grpc, config string
}

// The demo's policy cases, asked of check-policy (the built binary, with
// the dev IdP user's ID token claims or real JWT access token) and of a
// live Check over gRPC (with the real session cookie or bearer token):
// both give the same answer, and it is the case's.
func TestCheckPolicyMatchesLiveCheck(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("demo", "policy-cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []policyCase
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatalf("demo/policy-cases.json: %v", err)
	}
	demo := startMakeDemo(t)
	conn, err := grpc.NewClient(demo.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	client := authv3.NewAuthorizationClient(conn)
	users := &demoUsers{t: t, demo: demo, sessions: map[string]string{}, claims: map[string]string{}, tokens: map[string]string{}}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			args := []string{"check-policy", "--config", demo.config, "--url", c.URL, "--method", c.Method, "--json"}
			for k, v := range c.Ext {
				args = append(args, "--ext", k+"="+v)
			}
			var cookie, token string
			switch {
			case c.User == nil:
			case c.User.Via == "bearer":
				token = users.token(c.User.Name)
				args = append(args, "--token", token)
			default:
				cookie = users.session(c.User.Name, c.URL)
				args = append(args, "--claims", users.claimsFile(c.User.Name))
			}
			if c.API {
				args = append(args, "--api")
			}
			dry := dryRun(t, args)
			live := liveCheck(t, client, c, cookie, token)
			if live != c.Expect {
				t.Errorf("Check(%s %s as %v): got %+v, want %+v", c.Method, c.URL, c.User, live, c.Expect)
			}
			if dry != live {
				t.Errorf("check-policy answers %+v, a live Check %+v", dry, live)
			}
		})
	}
}

// startMakeDemo runs the demo (bin/demo, as make demo does) on free ports
// and reads where its parts are from what it prints.
func startMakeDemo(t *testing.T) makeDemo {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "demo")
	if out, err := exec.Command("go", "build", "-o", bin, "./demo").CombinedOutput(); err != nil {
		t.Fatalf("build demo: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "--server", serverBin, "--proxy", "envoy", "--addr", "127.0.0.1:0", "--idp", "127.0.0.1:0",
		"--upstream", "127.0.0.1:0", "--grpc", "127.0.0.1:0", "--ops", "127.0.0.1:0")
	_, printed := startDemo(t, cmd)
	t.Cleanup(func() {
		// Ctrl-C, so it removes its directory (a SIGKILL leaves it to the next run).
		_ = cmd.Process.Signal(syscall.SIGINT)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
		}
	})
	var d makeDemo
	for _, line := range printed {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "Open:":
			d.front = strings.TrimSuffix(f[1], "/")
		case "Config:":
			d.config = f[1]
		case "Parts:":
			for i := 1; i+1 < len(f); i++ {
				switch f[i] {
				case "IdP":
					d.issuer = f[i+1]
				case "gRPC":
					d.grpc = f[i+1]
				}
			}
		}
	}
	if d.front == "" || d.config == "" || d.issuer == "" || d.grpc == "" {
		t.Fatalf("the demo's printout lacks a part: %+v\n%s", d, strings.Join(printed, "\n"))
	}
	return d
}

// demoUsers are the dev IdP users of the cases: their sessions (a real
// login through the demo's front, per app host), ID token claims and JWT
// access tokens, each made once.
type demoUsers struct {
	t        *testing.T
	demo     makeDemo
	sessions map[string]string // user@host → Cookie header
	claims   map[string]string // user → claims file
	tokens   map[string]string // user → access token
}

// session is the Cookie header of user's session with the app of target's
// host, from a browser login at the demo's front.
func (u *demoUsers) session(user, target string) string {
	u.t.Helper()
	base := u.demo.front
	if tu, _ := url.Parse(target); strings.HasSuffix(tu.Hostname(), ".localhost") {
		fu, _ := url.Parse(u.demo.front)
		base = "http://" + tu.Hostname() + ":" + fu.Port()
	}
	key := user + "@" + base
	if c, ok := u.sessions[key]; ok {
		return c
	}
	b := newBrowser(u.t, user, user+"-password")
	if resp, hops := b.follow(base + "/oauth2/start?rd=/"); resp == nil {
		u.t.Fatalf("login of %s at %s left the stack: %v", user, base, hops)
	}
	cookie := cookieHeader(b, base)
	if cookie == "" {
		u.t.Fatalf("login of %s at %s: no session cookie", user, base)
	}
	u.sessions[key] = cookie
	return cookie
}

// claimsFile is a file of user's claims as the demo's login (client
// web@…, scope openid email profile) gets them: the ID token's, and, as
// the server does when the ID token has no email (ZITADEL's and the dev
// IdP's in the code flow), userinfo's besides.
func (u *demoUsers) claimsFile(user string) string {
	u.t.Helper()
	if f, ok := u.claims[user]; ok {
		return f
	}
	tok, err := devidp.TokensAt(u.t.Context(), u.demo.issuer, devidp.DefaultClient(), user, user+"-password")
	if err != nil {
		u.t.Fatal(err)
	}
	idToken, _ := tok.Extra("id_token").(string)
	parts := strings.Split(idToken, ".")
	if len(parts) != 3 {
		u.t.Fatalf("%s's ID token is no JWT: %.40q", user, idToken)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		u.t.Fatal(err)
	}
	claims := map[string]any{}
	if err := json.Unmarshal(payload, &claims); err != nil {
		u.t.Fatal(err)
	}
	if _, hasEmail := claims["email"]; !hasEmail {
		for k, v := range u.userinfo(tok.AccessToken) {
			if _, ok := claims[k]; !ok {
				claims[k] = v
			}
		}
	}
	b, _ := json.Marshal(claims)
	f := filepath.Join(u.t.TempDir(), user+".json")
	if err := os.WriteFile(f, b, 0o600); err != nil {
		u.t.Fatal(err)
	}
	u.claims[user] = f
	return f
}

// userinfo is the dev IdP's userinfo answer for accessToken.
func (u *demoUsers) userinfo(accessToken string) map[string]any {
	u.t.Helper()
	get := func(target, token string, into any) {
		req, _ := http.NewRequestWithContext(u.t.Context(), http.MethodGet, target, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := testkit.NoRedirects().Do(req)
		if err != nil {
			u.t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(into); err != nil || resp.StatusCode != http.StatusOK {
			u.t.Fatalf("GET %s: %d %v", target, resp.StatusCode, err)
		}
	}
	var discovery struct {
		Userinfo string `json:"userinfo_endpoint"`
	}
	get(u.demo.issuer+"/.well-known/openid-configuration", "", &discovery)
	info := map[string]any{}
	get(discovery.Userinfo, accessToken, &info)
	return info
}

// token is a JWT access token of user from the demo's API client.
func (u *demoUsers) token(user string) string {
	u.t.Helper()
	if tok, ok := u.tokens[user]; ok {
		return tok
	}
	tok, err := devidp.TokensAt(u.t.Context(), u.demo.issuer, devidp.JWTClient(), user, user+"-password")
	if err != nil {
		u.t.Fatal(err)
	}
	u.tokens[user] = tok.AccessToken
	return tok.AccessToken
}

// dryRun runs the binary's check-policy --json and reads its answer; the
// exit code must agree (0 allow, 1 not).
func dryRun(t *testing.T, args []string) policyAnswer {
	t.Helper()
	code, stdout, stderr := runCLI(t, nil, args...)
	var rep struct {
		Decision policyAnswer `json:"decision"`
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("check-policy: exit %d, not JSON (%v):\n%s%s", code, err, stdout, stderr)
	}
	if want := map[bool]int{true: 0, false: 1}[rep.Decision.Allow]; code != want {
		t.Errorf("check-policy exits %d for allow=%v, want %d", code, rep.Decision.Allow, want)
	}
	return rep.Decision
}

// liveCheck sends c's request as Envoy would, with the session cookie or
// the bearer token, to the demo's ext_authz service.
func liveCheck(t *testing.T, client authv3.AuthorizationClient, c policyCase, cookie, token string) policyAnswer {
	t.Helper()
	u, err := url.Parse(c.URL)
	if err != nil {
		t.Fatal(err)
	}
	accept := "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	if c.API || token != "" {
		accept = "application/json"
	}
	headers := map[string]string{":authority": u.Host, ":method": c.Method, ":path": u.RequestURI(), ":scheme": u.Scheme,
		"accept": accept, "x-request-id": "live-check"}
	if cookie != "" {
		headers["cookie"] = cookie
	}
	if token != "" {
		headers["authorization"] = "Bearer " + token
	}
	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: "192.0.2.10", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 40000}}}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id: "1", Method: c.Method, Headers: headers, Path: u.RequestURI(), Host: u.Host, Scheme: u.Scheme, Protocol: "HTTP/1.1"}},
		ContextExtensions: c.Ext,
	}}
	resp, err := client.Check(t.Context(), req)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	meta := resp.GetDynamicMetadata().GetFields()
	a := policyAnswer{Allow: resp.GetOkResponse() != nil, Reason: meta["reason"].GetStringValue(), Rule: meta["rule"].GetStringValue()}
	if !a.Allow {
		a.Status = int(resp.GetDeniedResponse().GetStatus().GetCode())
	}
	return a
}
