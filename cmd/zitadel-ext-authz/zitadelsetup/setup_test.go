package zitadelsetup

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/cmd/zitadel-ext-authz/config"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/oidcflow"
)

const template = `# demo
oidc_issuer_url = "http://localhost:8080"
oidc_issuer_dial_address = "zitadel:8080"
redirect_url = "http://localhost:8000/oauth2/callback"
cookie_secret = "0123456789!bcdef0123456789!bcdef"
cookie_secure = false
email_domains = ["*"]
skip_jwt_bearer_tokens = true
`

type fixture struct {
	zitadel *fakeZitadel
	opts    Options
	addr    string // the fake's real host:port
}

// newFixture starts the fake ZITADEL and returns Options that reach it the
// way the compose stack does: issuer http://localhost:8080, dialled at the
// fake's real address.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	z := newFakeZitadel(t, "pat-123")
	srv := httptest.NewServer(z)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	tmpl := filepath.Join(dir, "template.toml")
	if err := os.WriteFile(tmpl, []byte(template), 0o600); err != nil {
		t.Fatal(err)
	}
	return &fixture{zitadel: z, addr: strings.TrimPrefix(srv.URL, "http://"), opts: Options{
		Issuer:               "http://localhost:8080",
		HTTPClient:           oidcflow.NewHTTPClientDialing(5*time.Second, map[string]string{"localhost:8080": strings.TrimPrefix(srv.URL, "http://")}),
		PATFile:              filepath.Join(dir, "admin.pat"),
		Project:              "zitadel-ext-authz",
		Roles:                []string{"admin", "user"},
		AppURL:               "http://localhost:8000",
		BackchannelLogoutURI: "http://envoy:8000/oauth2/backchannel_logout",
		WebApp:               "web",
		APIApp:               "introspection",
		User:                 "alice",
		Password:             "Password1!",
		Email:                "alice@example.com",
		UserRoles:            []string{"admin"},
		Template:             tmpl,
		Out:                  filepath.Join(dir, "out.toml"),
		Wait:                 time.Minute,
		Sleep:                func(context.Context, time.Duration) error { return nil },
	}}
}

func (f *fixture) writePAT(t *testing.T) {
	t.Helper()
	if err := os.WriteFile(f.opts.PATFile, []byte("pat-123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestBootstrapCreatesEverythingAndWritesAWorkingConfig(t *testing.T) {
	f := newFixture(t)
	// ZITADEL is still starting: no PAT yet, then two 503s.
	f.zitadel.notReady = 2
	sleeps := 0
	f.opts.Sleep = func(context.Context, time.Duration) error {
		sleeps++
		if sleeps == 1 {
			f.writePAT(t)
		}
		return nil
	}
	res, err := Run(t.Context(), f.opts)
	if err != nil {
		t.Fatal(err)
	}
	if sleeps != 3 {
		t.Errorf("retried %d times, want 3 (missing PAT, two 503s)", sleeps)
	}
	if !res.CreatedProject || !res.CreatedWebApp || !res.CreatedAPIApp || !res.CreatedUser {
		t.Errorf("first run created %+v, want everything", res)
	}

	z := f.zitadel
	var project *fakeProject
	for _, p := range z.projects {
		project = p
	}
	if !project.roleAssertion || !slices.Equal(project.roles, []string{"admin", "user"}) {
		t.Errorf("project: role assertion %v, roles %v", project.roleAssertion, project.roles)
	}
	web := project.apps[0].oidc
	if web.AppType != "OIDC_APP_TYPE_WEB" || web.AuthMethodType != "OIDC_AUTH_METHOD_TYPE_BASIC" || !web.DevMode ||
		!slices.Equal(web.RedirectURIs, []string{"http://localhost:8000/oauth2/callback"}) ||
		!slices.Equal(web.PostLogoutRedirectURIs, []string{"http://localhost:8000/"}) ||
		!slices.Contains(web.GrantTypes, "OIDC_GRANT_TYPE_REFRESH_TOKEN") || !web.IDTokenRoleAssertion ||
		web.BackChannelLogoutURI != "http://envoy:8000/oauth2/backchannel_logout" {
		t.Errorf("OIDC app = %+v", web)
	}
	for _, g := range z.grants {
		if g.userID != res.UserID || g.projectID != res.ProjectID || !slices.Equal(g.roles, []string{"admin"}) {
			t.Errorf("grant = %+v", g)
		}
	}

	// The written file is a configuration the server loads as it is.
	cfg, warnings, err := config.Load([]string{"--config", f.opts.Out}, func(string) string { return "" })
	if err != nil {
		t.Fatalf("server can't load the bootstrap's output: %v", err)
	}
	if len(warnings) > 0 {
		t.Errorf("warnings: %v", warnings)
	}
	if cfg.OIDC.ClientID != res.WebClientID || cfg.OIDC.ClientSecret != project.apps[0].secret ||
		cfg.Bearer.IntrospectionClientID != res.APIClientID || cfg.Bearer.IntrospectionClientSecret != project.apps[1].secret ||
		cfg.Bearer.ProjectID != res.ProjectID || cfg.IssuerDial["localhost:8080"] != "zitadel:8080" {
		t.Errorf("loaded config: client %q/%q, introspection %q, project %q, dial %v", cfg.OIDC.ClientID, cfg.OIDC.ClientSecret,
			cfg.Bearer.IntrospectionClientID, cfg.Bearer.ProjectID, cfg.IssuerDial)
	}
	if fi, _ := os.Stat(f.opts.Out); fi.Mode().Perm() != 0o600 {
		t.Errorf("output mode %v, want 0600 (it holds secrets)", fi.Mode().Perm())
	}
}

func TestBootstrapIsIdempotent(t *testing.T) {
	f := newFixture(t)
	f.writePAT(t)
	first, err := Run(t.Context(), f.opts)
	if err != nil {
		t.Fatal(err)
	}
	before := len(f.zitadel.calls)
	second, err := Run(t.Context(), f.opts)
	if err != nil {
		t.Fatal(err)
	}
	if second.CreatedProject || second.CreatedWebApp || second.CreatedAPIApp || second.CreatedUser || second.RegeneratedWebSecret || second.GrantedRoles != nil {
		t.Errorf("second run changed something: %+v", second)
	}
	if second.WebClientSecret != first.WebClientSecret || second.APIClientSecret != first.APIClientSecret {
		t.Error("second run lost the secrets written by the first")
	}
	for _, c := range f.zitadel.calls[before:] {
		if !strings.HasSuffix(c, "/_search") && !strings.HasPrefix(c, "GET ") {
			t.Errorf("second run wrote: %s", c)
		}
	}

	// The output file lost (a fresh volume): secrets can't be read back,
	// so new ones are generated, and the config works with them.
	os.Remove(f.opts.Out)
	third, err := Run(t.Context(), f.opts)
	if err != nil {
		t.Fatal(err)
	}
	if !third.RegeneratedWebSecret || !third.RegeneratedAPISecret || third.WebClientSecret == first.WebClientSecret {
		t.Errorf("third run: %+v, want regenerated secrets", third)
	}
	if n := f.zitadel.callCount("POST /management/v1/projects/_search"); n != 3 {
		t.Errorf("project searched %d times, want 3", n)
	}
	if len(f.zitadel.projects) != 1 || len(f.zitadel.users) != 1 || len(f.zitadel.grants) != 1 {
		t.Errorf("duplicates created: %d projects, %d users, %d grants", len(f.zitadel.projects), len(f.zitadel.users), len(f.zitadel.grants))
	}

	// A new role for the user updates the existing grant.
	f.opts.UserRoles = []string{"admin", "user"}
	fourth, err := Run(t.Context(), f.opts)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(fourth.GrantedRoles, []string{"admin", "user"}) || len(f.zitadel.grants) != 1 {
		t.Errorf("grant update: %v, %d grants", fourth.GrantedRoles, len(f.zitadel.grants))
	}
}

func TestBootstrapRefusedTokenFailsFast(t *testing.T) {
	f := newFixture(t)
	if err := os.WriteFile(f.opts.PATFile, []byte("wrong"), 0o600); err != nil {
		t.Fatal(err)
	}
	f.opts.Sleep = func(context.Context, time.Duration) error {
		t.Error("retried a PAT that ZITADEL refused")
		return nil
	}
	_, err := Run(t.Context(), f.opts)
	if err == nil || !strings.Contains(err.Error(), f.opts.PATFile) || !strings.Contains(err.Error(), "401") {
		t.Fatalf("err = %v, want the PAT file named and the 401", err)
	}
	if _, err := os.Stat(f.opts.Out); err == nil {
		t.Error("configuration written despite the failure")
	}
}

func TestBootstrapGivesUpAfterWait(t *testing.T) {
	f := newFixture(t)
	f.opts.Wait = 0 // the PAT never appears
	_, err := Run(t.Context(), f.opts)
	if err == nil || !strings.Contains(err.Error(), "not ready") || !strings.Contains(err.Error(), "admin.pat") {
		t.Fatalf("err = %v, want 'not ready' naming the missing PAT file", err)
	}
}

func TestBootstrapWrongHostIsReported(t *testing.T) {
	f := newFixture(t)
	f.writePAT(t)
	// Dialling ZITADEL by its container name without the dial override:
	// the Host is wrong and ZITADEL finds no instance (zitadel.md §4.3).
	f.opts.Issuer = "http://" + f.addr
	f.opts.HTTPClient = oidcflow.NewHTTPClient(5 * time.Second)
	f.opts.Wait = 0
	_, err := Run(t.Context(), f.opts)
	if err == nil || !strings.Contains(err.Error(), "Instance not found") {
		t.Fatalf("err = %v, want ZITADEL's 'Instance not found'", err)
	}
}

// The demo user's sign-in name is what ZITADEL says it is: its userName
// under ZITADEL v4's default domain policy (the compose demo's), suffixed
// with the organization's domain when the policy requires it. What
// docker-compose.yml and README tell users to type is the former.
func TestBootstrapReportsTheSignInName(t *testing.T) {
	for _, mustBeDomain := range []bool{false, true} {
		f := newFixture(t)
		f.writePAT(t)
		f.zitadel.loginMustBeDomain = mustBeDomain
		res, err := Run(t.Context(), f.opts)
		if err != nil {
			t.Fatal(err)
		}
		want := "alice"
		if mustBeDomain {
			want = "alice@" + orgDomain
		}
		if res.UserLoginName != want {
			t.Errorf("userLoginMustBeDomain %v: sign-in name %q, want %q", mustBeDomain, res.UserLoginName, want)
		}
	}
	for _, doc := range []string{"../../../docker-compose.yml", "../../../README.md"} {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "alice@zitadel.localhost") || !strings.Contains(string(b), "sign in as alice ") {
			t.Errorf("%s: the compose demo's user signs in as \"alice\" (ZITADEL v4's default domain policy); say so", doc)
		}
	}
}
