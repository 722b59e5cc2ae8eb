package integration_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/devidp"
)

// clientAuthConfig is what a user of ZITADEL's console sets for an app of
// each authentication method (README's table).
func clientAuthConfig(t *testing.T, c devidp.Client, method string) map[string]any {
	t.Helper()
	cfg := map[string]any{"client_id": c.ID, "client_secret": c.Secret, "client_auth_method": method}
	if c.APIKey != nil {
		cfg["client_key_file"] = writeKeyFile(t, c)
	}
	return cfg
}

func writeKeyFile(t *testing.T, c devidp.Client) string {
	t.Helper()
	data, err := devidp.KeyFile(c)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "key.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Each of ZITADEL's four authentication methods for a Web app logs in,
// refreshes and signs out (revoking the refresh token) through Envoy, the
// dev IdP refusing any other way to authenticate the client.
func TestEveryClientAuthMethod(t *testing.T) {
	for _, tc := range []struct {
		method string
		idp    oidc.AuthMethod
	}{
		{"basic", oidc.AuthMethodBasic},
		{"post", oidc.AuthMethodPost},
		{"none", oidc.AuthMethodNone},
		{"private_key_jwt", oidc.AuthMethodPrivateKeyJWT},
	} {
		t.Run(tc.method, func(t *testing.T) {
			c := devidp.MethodClient(tc.idp)
			cfg := clientAuthConfig(t, c, tc.method)
			cfg["cookie_refresh"], cfg["refresh_grace_period"] = "1ms", "0s"
			st := startStack(t, stackOptions{config: cfg, clients: []devidp.Client{c}})
			alice := newBrowser(t, "alice", "alice-password")
			upstreamSaw(t, st.login(t, alice, "/"))
			tokenCalls := st.IdP.Calls("/oauth/token")
			if got := upstreamSaw(t, alice.get(st.Front.URL+"/refreshed")); got.Headers["x-forwarded-user"] != "user-alice" {
				t.Fatalf("after the refresh: %v", got.Headers)
			}
			if st.IdP.Calls("/oauth/token") != tokenCalls+1 {
				t.Errorf("token endpoint calls %d → %d, want one refresh", tokenCalls, st.IdP.Calls("/oauth/token"))
			}
			r := alice.get(st.Front.URL + "/oauth2/sign_out")
			if r.StatusCode != http.StatusFound {
				t.Fatalf("sign-out: %s", describe(r))
			}
			waitFor(t, "the revocation at sign-out", func() bool { return st.IdP.Calls("/revoke") == 1 })
			if logs := st.Server.Logs(); strings.Contains(logs, "revoke_failed") || strings.Contains(logs, "client_auth_failed") {
				t.Errorf("the IdP refused the client:\n%s", logs)
			}
			if r := alice.get(st.Front.URL + "/after"); r.StatusCode != http.StatusFound {
				t.Errorf("after sign-out: %s, want the login redirect", describe(r))
			}
		})
	}
}

// A client_auth_method the app in ZITADEL doesn't use: the callback is a
// 500 page that doesn't send the user round again, and the log says once
// (not per attempt) which method was used and what to set.
func TestWrongClientAuthMethod(t *testing.T) {
	c := devidp.MethodClient(oidc.AuthMethodPost)
	st := startStack(t, stackOptions{config: clientAuthConfig(t, c, "basic"), clients: []devidp.Client{c}})
	for i := range 2 {
		r, hops := newBrowser(t, "alice", "alice-password").follow(st.Front.URL + "/")
		if r == nil || r.StatusCode != http.StatusInternalServerError || !strings.Contains(r.Body, "misconfigured") || strings.Contains(r.Body, "/oauth2/start") {
			t.Fatalf("login %d with the wrong method: %s via %v, want the 500 page without a way round", i, describe(r), hops)
		}
	}
	waitFor(t, "the hint", func() bool { return strings.Contains(st.Server.Logs(), `"reason":"client_auth_failed"`) })
	logs := st.Server.Logs()
	if n := strings.Count(logs, `"reason":"client_auth_failed"`); n != 1 {
		t.Errorf("%d hint lines for 2 failed logins, want 1 a minute", n)
	}
	if !strings.Contains(logs, `"client_auth_method":"basic"`) || !strings.Contains(logs, "Post → post") {
		t.Errorf("the hint doesn't name the method and the fix:\n%s", logs)
	}
}

// A client secret or key file rotated in place applies without a restart:
// the server watches the files the configuration names.
func TestRotatedSecretAndKeyApplyWithoutRestart(t *testing.T) {
	t.Run("client_secret_file", func(t *testing.T) {
		c := devidp.MethodClient(oidc.AuthMethodBasic)
		secretFile := filepath.Join(t.TempDir(), "client-secret")
		if err := os.WriteFile(secretFile, []byte("the-old-secret\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		st := startStack(t, stackOptions{config: map[string]any{"client_id": c.ID, "client_secret": "", "client_secret_file": secretFile}, clients: []devidp.Client{c}})
		if r, _ := newBrowser(t, "alice", "alice-password").follow(st.Front.URL + "/"); r == nil || r.StatusCode != http.StatusInternalServerError {
			t.Fatalf("login with the old secret: %s", describe(r))
		}
		if err := os.WriteFile(secretFile, []byte(c.Secret+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		loginAfterRotation(t, st)
	})
	t.Run("client_key_file", func(t *testing.T) {
		c := devidp.MethodClient(oidc.AuthMethodPrivateKeyJWT)
		old := c
		old.APIKey, _ = rsa.GenerateKey(rand.Reader, 2048)
		keyFile := writeKeyFile(t, old)
		st := startStack(t, stackOptions{config: map[string]any{"client_id": c.ID, "client_secret": "", "client_auth_method": "private_key_jwt", "client_key_file": keyFile},
			clients: []devidp.Client{c}})
		if r, _ := newBrowser(t, "alice", "alice-password").follow(st.Front.URL + "/"); r == nil || r.StatusCode != http.StatusInternalServerError {
			t.Fatalf("login with a key the IdP doesn't know: %s", describe(r))
		}
		data, _ := devidp.KeyFile(c)
		// As Kubernetes and editors do: a new file renamed over the old.
		tmp := keyFile + ".new"
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, keyFile); err != nil {
			t.Fatal(err)
		}
		loginAfterRotation(t, st)
	})
}

// loginAfterRotation waits for the reload the file change triggers, then
// logs in.
func loginAfterRotation(t *testing.T, st *stack) {
	t.Helper()
	waitFor(t, "the reload after the file changed", func() bool {
		return strings.Contains(st.Server.Logs(), `"msg":"configuration reloaded"`)
	})
	if !strings.Contains(st.Server.Logs(), "default: rebuilt") {
		t.Errorf("the reload didn't rebuild the app:\n%s", st.Server.Logs())
	}
	upstreamSaw(t, st.login(t, newBrowser(t, "alice", "alice-password"), "/rotated"))
}

// A discovery document that lists the token endpoint's methods without
// ours: check-config and start-up warn, naming both.
func TestClientAuthMethodNotInDiscovery(t *testing.T) {
	c := devidp.MethodClient(oidc.AuthMethodPost)
	idp := devidp.StartT(t, devidp.Options{Clients: []devidp.Client{c}})
	idp.SetTamper(func(r *http.Request, status int, body []byte) (int, []byte) {
		if r.URL.Path == "/.well-known/openid-configuration" {
			var doc map[string]any
			if json.Unmarshal(body, &doc) == nil {
				doc["token_endpoint_auth_methods_supported"] = []string{"client_secret_basic", "private_key_jwt"}
				body, _ = json.Marshal(doc)
			}
		}
		return status, body
	})
	cfg := baseConfig(idp.Issuer)
	maps.Copy(cfg, clientAuthConfig(t, c, "post"))
	want := `client_auth_method post (client_secret_post) is not among the token endpoint's methods in discovery, [client_secret_basic private_key_jwt]`
	code, _, stderr := runCLI(t, nil, "check-config", "--config", writeConfig(t, cfg))
	if code != 0 || !strings.Contains(stderr, "warning: app default: "+want) {
		t.Errorf("check-config: exit %d, stderr %q; want a warning containing %q", code, stderr, want)
	}
	srv := startServer(t, cfg)
	waitFor(t, "the start-up warning", func() bool { return strings.Contains(srv.Logs(), want) })
}
