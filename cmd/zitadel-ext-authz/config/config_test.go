package config

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const secret32 = "0123456789!bcdef0123456789!bcdef"

func write(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

const minimalTOML = `
oidc_issuer_url = "https://acme.zitadel.cloud"
client_id = "1234@acme"
client_secret = "s3cret"
cookie_secret = "` + secret32 + `"
email_domains = ["*"]
`

func TestFormatsByExtension(t *testing.T) {
	files := map[string]string{
		"c.toml": minimalTOML,
		"c.yaml": "oidc_issuer_url: https://acme.zitadel.cloud\nclient_id: 1234@acme\nclient_secret: s3cret\ncookie_secret: \"" + secret32 + "\"\nemail_domains: ['*']\n",
		"c.json": `{"oidc_issuer_url":"https://acme.zitadel.cloud","client_id":"1234@acme","client_secret":"s3cret","cookie_secret":"` + secret32 + `","email_domains":["*"]}`,
	}
	for name, body := range files {
		t.Run(name, func(t *testing.T) {
			c, _, err := Load([]string{"--config", write(t, name, body)}, env(nil))
			if err != nil {
				t.Fatalf("Load(%s): %v", name, err)
			}
			if c.OIDC.ClientID != "1234@acme" || c.OIDC.Issuer != "https://acme.zitadel.cloud" || !slices.Equal(c.Authz.EmailDomains, []string{"*"}) {
				t.Fatalf("Load(%s): %+v", name, c)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	c, _, err := Load([]string{"--config", write(t, "c.toml", minimalTOML)}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Cookie.Name != "_oauth2_proxy" || c.Cookie.Path != "/" || !c.Cookie.HTTPOnly || !c.Cookie.Secure || c.Cookie.SameSite != http.SameSiteLaxMode || c.Cookie.Expire != 168*time.Hour {
		t.Errorf("cookie defaults: %+v", c.Cookie)
	}
	if !slices.Equal(c.OIDC.Scopes, []string{"openid", "email", "profile", "offline_access"}) || c.OIDC.UserIDClaim != "sub" || c.OIDC.GroupsClaim != "groups" || c.OIDC.EmailClaim != "email" {
		t.Errorf("oidc defaults: %+v", c.OIDC)
	}
	if c.Authz.RedirectURL != "/oauth2/callback" || c.Authz.IDPTimeout != 5*time.Second || !c.Authz.PassUserHeaders || c.Authz.SkipProviderButton {
		t.Errorf("authz defaults: %+v", c.Authz)
	}
}

func TestPrecedenceFlagOverEnvOverFile(t *testing.T) {
	path := write(t, "c.toml", minimalTOML+`provider_display_name = "file"`+"\n"+`cookie_name = "file_cookie"`+"\n"+`scope = "openid"`)
	e := env(map[string]string{
		"ZITADEL_EXT_AUTHZ_PROVIDER_DISPLAY_NAME": "env",
		"ZITADEL_EXT_AUTHZ_COOKIE_NAME":           "env_cookie",
		"ZITADEL_EXT_AUTHZ_ALLOWED_GROUPS":        "a, b",
		"ZITADEL_EXT_AUTHZ_COOKIE_SECURE":         "false",
	})
	c, _, err := Load([]string{"--config", path, "--provider-display-name", "flag", "--email-domains", "x.com,y.com"}, e)
	if err != nil {
		t.Fatal(err)
	}
	if c.Authz.ProviderDisplayName != "flag" || c.Cookie.Name != "env_cookie" || !slices.Equal(c.OIDC.Scopes, []string{"openid", "offline_access"}) {
		t.Errorf("precedence: display=%q cookie=%q scopes=%v", c.Authz.ProviderDisplayName, c.Cookie.Name, c.OIDC.Scopes)
	}
	if !slices.Equal(c.Authz.AllowedGroups, []string{"a", "b"}) || !slices.Equal(c.Authz.EmailDomains, []string{"x.com", "y.com"}) || c.Cookie.Secure {
		t.Errorf("lists/bools from env and flags: groups=%v domains=%v secure=%v", c.Authz.AllowedGroups, c.Authz.EmailDomains, c.Cookie.Secure)
	}
}

func TestEnvOnly(t *testing.T) {
	c, _, err := Load(nil, env(map[string]string{
		"ZITADEL_EXT_AUTHZ_OIDC_ISSUER_URL": "https://acme.zitadel.cloud",
		"ZITADEL_EXT_AUTHZ_CLIENT_ID":       "id",
		"ZITADEL_EXT_AUTHZ_CLIENT_SECRET":   "s",
		"ZITADEL_EXT_AUTHZ_COOKIE_SECRET":   secret32,
	}))
	if err != nil || c.OIDC.ClientSecret != "s" {
		t.Fatalf("Load from env only: %v", err)
	}
}

func TestErrorsNameTheKey(t *testing.T) {
	cases := []struct{ key, line string }{
		{"cookie_secret", `cookie_secret = "short"`},
		{"oidc_issuer_url", `oidc_issuer_url = "not a url"`},
		{"provider", `provider = "github"`},
		{"cookie_samesite", `cookie_samesite = "sometimes"`},
		{"cookie_expire", `cookie_expire = "forever"`},
		{"idp_timeout", `idp_timeout = "0s"`},
		// 0 would quietly have been the default (5m, 10s).
		{"introspection_cache_ttl", `introspection_cache_ttl = "0s"`},
		{"introspection_negative_ttl", `introspection_negative_ttl = "0s"`},
		{"identity_jwt_header", `identity_jwt_header = "x-forwarded-user"`},
		{"api_routes", `api_routes = ["("]`},
		{"grpc_address", `grpc_address = "9001"`},
		{"code_challenge_method", `code_challenge_method = "plain"`},
		{"log_level", `log_level = "loud"`},
		{"cookie_name", `cookie_name = "bad name;"`},
		{"email_domains", `email_domains = "*"
allowed_groups = [1, 2]`},
	}
	for _, tc := range cases {
		t.Run(tc.key, func(t *testing.T) {
			body := minimalTOML
			for _, l := range strings.Split(tc.line, "\n") {
				k, _, _ := strings.Cut(l, " =")
				body = removeKey(body, k)
			}
			_, _, err := Load([]string{"--config", write(t, "c.toml", body+tc.line+"\n")}, env(nil))
			want := tc.key
			if tc.key == "email_domains" {
				want = "allowed_groups"
			}
			if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), want) {
				t.Fatalf("Load(%s): got %v, want one line naming %s", tc.line, err, want)
			}
		})
	}
	if _, _, err := Load([]string{"--config", write(t, "c.toml", removeKey(minimalTOML, "client_id"))}, env(nil)); err == nil || !strings.Contains(err.Error(), "client_id") {
		t.Fatalf("missing client_id: %v", err)
	}
}

func removeKey(body, key string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if !strings.HasPrefix(l, key+" ") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestWarnings(t *testing.T) {
	_, warnings, err := Load([]string{"--config", write(t, "c.toml", minimalTOML+"upstreams = [\"https://x\"]\ntypo_key = 1\n")}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(warnings, "\n")
	if !strings.Contains(joined, `unknown key "typo_key"`) || !strings.Contains(joined, "upstreams: Envoy's job: ignored") {
		t.Fatalf("warnings: %q", warnings)
	}
}

func TestHelp(t *testing.T) {
	if _, _, err := Load([]string{"--help"}, env(nil)); !errors.Is(err, ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
}

func TestIntrospectionKeyFile(t *testing.T) {
	good := write(t, "key.json", `{"type":"application","keyId":"123","key":"-----BEGIN RSA PRIVATE KEY-----\nMII\n-----END RSA PRIVATE KEY-----\n","clientId":"456@acme","appId":"789"}`)
	c, _, err := Load([]string{"--config", write(t, "c.toml", minimalTOML+"skip_jwt_bearer_tokens = true\nintrospection_key_file = \""+good+"\"\n")}, env(nil))
	if err != nil || c.Bearer.IntrospectionKey == nil || c.Bearer.IntrospectionKey.ClientID != "456@acme" || !c.BearerEnabled {
		t.Fatalf("Load with a key file: %+v, %v", c, err)
	}
	for name, body := range map[string]string{"not json": "nope", "no key": `{"keyId":"1","clientId":"2"}`} {
		bad := write(t, "bad.json", body)
		_, _, err := Load([]string{"--config", write(t, "c.toml", minimalTOML+"introspection_key_file = \""+bad+"\"\n")}, env(nil))
		if err == nil || !strings.Contains(err.Error(), "introspection_key_file") {
			t.Errorf("key file %s: %v, want an error naming introspection_key_file", name, err)
		}
	}
	if _, _, err := Load([]string{"--config", write(t, "c.toml", minimalTOML+"introspection_key_file = \"/nonexistent.json\"\n")}, env(nil)); err == nil || !strings.Contains(err.Error(), "introspection_key_file") {
		t.Errorf("missing key file: %v", err)
	}
}

func TestRefreshAndSecretRotationKeys(t *testing.T) {
	c, warnings, err := Load([]string{"--config", write(t, "c.toml", minimalTOML+`refresh_tokens = false
cookie_secrets = ["`+strings.Repeat("n!", 16)+`", "`+strings.Repeat("o!", 8)+`"]
session_idle_timeout = "30m"
refresh_before_expiry = "2m"
`)}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(c.OIDC.Scopes, "offline_access") || len(c.CookieSecrets) != 2 || string(c.CookieSecrets[0]) != strings.Repeat("n!", 16) {
		t.Fatalf("scopes %v, secrets %d", c.OIDC.Scopes, len(c.CookieSecrets))
	}
	if c.Authz.IdleTimeout != 30*time.Minute || c.Authz.RefreshBeforeExpiry != 2*time.Minute {
		t.Fatalf("lifetimes: %+v", c.Authz)
	}
	if !strings.Contains(strings.Join(warnings, "\n"), "cookie_secret: ignored") {
		t.Fatalf("no warning that cookie_secret is ignored: %q", warnings)
	}
	_, _, err = Load([]string{"--config", write(t, "c.toml", minimalTOML+`cookie_secrets = ["`+strings.Repeat("n", 32)+`", "short"]`)}, env(nil))
	if err == nil || !strings.Contains(err.Error(), "cookie_secrets: entry 2") {
		t.Fatalf("bad second secret: %v", err)
	}
	_, _, err = Load([]string{"--config", write(t, "c.toml", minimalTOML+"refresh_tokens = false\ncookie_refresh = \"1h\"\n")}, env(nil))
	if err == nil || !strings.Contains(err.Error(), "cookie_refresh") {
		t.Fatalf("cookie_refresh without refresh tokens: %v", err)
	}
}

func TestClientSecretFileAndDialAddress(t *testing.T) {
	secretFile := write(t, "secret", "from-file\n")
	body := removeKey(minimalTOML, "client_secret") + `client_secret_file = "` + secretFile + `"
oidc_issuer_dial_address = "zitadel:8080"
`
	c, _, err := Load([]string{"--config", write(t, "c.toml", body)}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.OIDC.ClientSecret != "from-file" {
		t.Errorf("client secret = %q, want the file's content without the newline", c.OIDC.ClientSecret)
	}
	if got := c.IssuerDial["acme.zitadel.cloud:443"]; got != "zitadel:8080" {
		t.Errorf("IssuerDial = %v, want acme.zitadel.cloud:443 → zitadel:8080", c.IssuerDial)
	}
	// client_secret wins over the file, as in oauth2-proxy.
	c, _, err = Load([]string{"--config", write(t, "c.toml", minimalTOML+`client_secret_file = "`+secretFile+`"`+"\n")}, env(nil))
	if err != nil || c.OIDC.ClientSecret != "s3cret" {
		t.Errorf("client_secret and client_secret_file: %q, %v", c.OIDC.ClientSecret, err)
	}
	for key, body := range map[string]string{
		"client_secret_file":       removeKey(minimalTOML, "client_secret") + `client_secret_file = "/nonexistent/secret"`,
		"oidc_issuer_dial_address": minimalTOML + `oidc_issuer_dial_address = "zitadel"`,
	} {
		_, _, err := Load([]string{"--config", write(t, "c.toml", body+"\n")}, env(nil))
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("bad %s: %v, want an error naming the key", key, err)
		}
	}
}

func TestRedisKeys(t *testing.T) {
	c, _, err := Load([]string{"--config", write(t, "c.toml", minimalTOML+"session_store_type = \"redis\"\nredis_url = \"rediss://:pw@cache:6380/2\"\n")}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.SessionStore != "redis" || c.Redis == nil || c.Redis.Addrs[0] != "cache:6380" || c.Redis.Password != "pw" || c.Redis.DB != 2 || c.Redis.TLSConfig == nil {
		t.Errorf("redis options %+v", c.Redis)
	}
	if c.RedisL1TTL != 10*time.Second {
		t.Errorf("redis_l1_ttl default %v", c.RedisL1TTL)
	}
	if got := strings.Join(c.Masked(), "\n"); strings.Contains(got, "pw@") || !strings.Contains(got, "redis_url = ****** (set)") {
		t.Error("redis_url (with its password) not masked")
	}
	c, _, err = Load([]string{"--config", write(t, "c.toml", minimalTOML+"redis_sentinel_addresses = [\"s1:26379\", \"s2:26379\"]\nredis_sentinel_master_name = \"main\"\n")}, env(nil))
	if err != nil || c.Redis.MasterName != "main" || len(c.Redis.Addrs) != 2 || c.SessionStore != "cookie" {
		t.Errorf("sentinel: %+v, %v", c.Redis, err)
	}
	for key, body := range map[string]string{
		"session_store_type":         "session_store_type = \"redis\"\n",
		"redis_url":                  "redis_url = \"http://x\"\n",
		"redis_sentinel_master_name": "redis_sentinel_addresses = [\"s1:26379\"]\n",
		"redis_ca_file":              "redis_url = \"redis://cache:6379\"\nredis_ca_file = \"/nonexistent.pem\"\n",
	} {
		if _, _, err := Load([]string{"--config", write(t, "c.toml", minimalTOML+body)}, env(nil)); err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s: %v, want an error naming %s", strings.TrimSpace(body), err, key)
		}
	}
}

// A malformed Redis URL is named in the error, its password never.
func TestRedisURLErrorsHideThePassword(t *testing.T) {
	for _, body := range []string{
		"session_store_type = \"redis\"\nredis_url = \"redis://:s3cr3t-pw@cache:port/0\"\n",
		"session_store_type = \"redis\"\nredis_url = \"redis://admin:s3cr3t-pw@cache:6379/x\"\n",
		"session_store_type = \"redis\"\nredis_url = \"redis://:s3cr3t/pw@cache:6379\"\n", // the password's / ends the host
		"session_store_type = \"redis\"\nredis_sentinel_addresses = [\"redis://:s3cr3t-pw@sentinel:bad port\"]\nredis_sentinel_master_name = \"m\"\n",
	} {
		_, _, err := Load([]string{"--config", write(t, "c.toml", minimalTOML+body)}, env(nil))
		if err == nil || !strings.Contains(err.Error(), "redis_url") || strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("%s: %v; want an error naming redis_url without the password", strings.TrimSpace(body), err)
		}
	}
}

// session_cookie_minimal keeps no ID token: backend_logout_url's
// {id_token} can't be filled, so the combination is refused at load
// (oauth2-proxy skips the backend logout silently).
func TestSessionCookieMinimalWithBackendLogoutIsRefused(t *testing.T) {
	body := "session_cookie_minimal = true\nbackend_logout_url = \"https://backend.example/logout?id_token={id_token}\"\n"
	if _, _, err := Load([]string{"--config", write(t, "c.toml", minimalTOML+body)}, env(nil)); err == nil || !strings.Contains(err.Error(), "session_cookie_minimal") {
		t.Errorf("session_cookie_minimal with backend_logout_url: %v, want an error naming session_cookie_minimal", err)
	}
}

func TestHostPrefixWarns(t *testing.T) {
	_, warnings, err := Load([]string{"--config", write(t, "c.toml", minimalTOML+"cookie_name = \"__Host-s\"\ncookie_secure = false\n")}, env(nil))
	if err != nil || !slices.ContainsFunc(warnings, func(w string) bool { return strings.Contains(w, "__Host-") }) {
		t.Errorf("__Host- with cookie_secure = false: %v, %v; want a warning", warnings, err)
	}
	_, warnings, _ = Load([]string{"--config", write(t, "c.toml", minimalTOML+"cookie_name = \"__Host-s\"\n")}, env(nil))
	if slices.ContainsFunc(warnings, func(w string) bool { return strings.Contains(w, "__Host-") }) {
		t.Errorf("__Host- with the defaults warned: %v", warnings)
	}
}

// client_auth_method and what each method needs, with errors that say
// which console setting maps to which value.
func TestClientAuthMethod(t *testing.T) {
	key := write(t, "key.json", `{"type":"application","keyId":"123","key":"-----BEGIN RSA PRIVATE KEY-----\nMII\n-----END RSA PRIVATE KEY-----\n","clientId":"1234@acme","appId":"789"}`)
	noSecret := removeKey(minimalTOML, "client_secret")
	c, _, err := Load([]string{"--config", write(t, "c.toml", minimalTOML)}, env(nil))
	if err != nil || c.OIDC.AuthMethod != "basic" {
		t.Fatalf("default: %q, %v", c.OIDC.AuthMethod, err)
	}
	c, _, err = Load([]string{"--config", write(t, "c.toml", noSecret+"client_auth_method = \"none\"\n")}, env(nil))
	if err != nil || c.OIDC.AuthMethod != "none" || c.OIDC.ClientSecret != "" {
		t.Fatalf("none without a secret: %v", err)
	}
	_, warnings, err := Load([]string{"--config", write(t, "c.toml", minimalTOML+"client_auth_method = \"none\"\n")}, env(nil))
	if err != nil || !strings.Contains(strings.Join(warnings, "\n"), "the secret is not sent") {
		t.Fatalf("none with a secret: %q, %v", warnings, err)
	}
	// The key file names the client: client_id may be left out.
	c, _, err = Load([]string{"--config", write(t, "c.toml", removeKey(noSecret, "client_id")+"client_auth_method = \"private_key_jwt\"\nclient_key_file = \""+key+"\"\n")}, env(nil))
	if err != nil || c.OIDC.ClientKey == nil || c.OIDC.ClientID != "1234@acme" || c.FileDigests["client_key_file"] == "" {
		t.Fatalf("private_key_jwt: %v", err)
	}
	for name, tc := range map[string]struct{ body, want string }{
		"unknown method":   {minimalTOML + "client_auth_method = \"tls\"\n", "client_auth_method: want basic (ZITADEL: Code), post (Post), none (PKCE) or private_key_jwt (JWT)"},
		"post, no secret":  {noSecret + "client_auth_method = \"post\"\n", "client_secret: required: the client secret of your ZITADEL web application (authentication method Post)"},
		"jwt, no key file": {noSecret + "client_auth_method = \"private_key_jwt\"\n", "client_key_file: required with client_auth_method = \"private_key_jwt\""},
		"key file, basic":  {minimalTOML + "client_key_file = \"" + key + "\"\n", "client_key_file: set, but client_auth_method is \"basic\""},
		"another client":   {strings.Replace(noSecret, "1234@acme", "999@acme", 1) + "client_auth_method = \"private_key_jwt\"\nclient_key_file = \"" + key + "\"\n", `is the key of client "1234@acme", but client_id is "999@acme"`},
		"missing key file": {noSecret + "client_auth_method = \"private_key_jwt\"\nclient_key_file = \"/nonexistent.json\"\n", "client_key_file"},
		"basic, no secret": {noSecret, "a PKCE app needs client_auth_method = \"none\""},
	} {
		_, _, err := Load([]string{"--config", write(t, "c.toml", tc.body)}, env(nil))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}

// oauth2-proxy's names, environment and flags: aliases are read, its
// singular flags repeat, negated routes parse, and a validation error
// comes with every warning found before it.
func TestOAuth2ProxyNames(t *testing.T) {
	c, warnings, err := Load([]string{"--config", write(t, "c.toml", removeKey(minimalTOML, "client_secret")+`
redis_connection_url = "redis://redis:6379/0"
session_store_type = "redis"
oidc_extra_audiences = ["api"]
skip_auth_routes = ["GET!=^/private", "!=^/api/", "POST=^/hook$"]
skip_auth_regex = ["^/legacy"]
set_authorization_header = true
auth_logging = false
github_org = "acme"
`), "--whitelist-domain", "*.example.com", "--whitelist-domain", "app.example.org"}, env(map[string]string{"OAUTH2_PROXY_CLIENT_SECRET": "from-env"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.OIDC.ClientSecret != "from-env" || c.Redis == nil || c.Redis.Addrs[0] != "redis:6379" || !slices.Equal(c.Bearer.ExtraAudiences, []string{"api"}) ||
		!c.Authz.PassAuthorizationHeader || !slices.Equal(c.Authz.WhitelistDomains, []string{"*.example.com", "app.example.org"}) {
		t.Fatalf("aliases: secret %q, redis %+v, audiences %v, authorization %v, whitelist %v", c.OIDC.ClientSecret, c.Redis, c.Bearer.ExtraAudiences, c.Authz.PassAuthorizationHeader, c.Authz.WhitelistDomains)
	}
	var routes []string
	for _, r := range c.Authz.SkipAuthRoutes {
		routes = append(routes, fmt.Sprintf("%s %v %s", r.Method, r.Negate, r.Path))
	}
	if want := []string{"GET true ^/private", " true ^/api/", "POST false ^/hook$", " false ^/legacy"}; !slices.Equal(routes, want) {
		t.Errorf("skip_auth_routes %q, want %q", routes, want)
	}
	joined := strings.Join(warnings, "\n")
	for _, want := range []string{"auth_logging: accepted, no effect here", "github_org: not supported: another provider's option"} {
		if !strings.Contains(joined, want) {
			t.Errorf("warnings lack %q: %q", want, warnings)
		}
	}
	for _, report := range []string{"redis_connection_url (file): alias of redis_url", "client_secret (OAUTH2_PROXY_CLIENT_SECRET): used", "whitelist_domains (--whitelist-domain): used"} {
		if !slices.Contains(c.OAuth2Proxy, report) {
			t.Errorf("report lacks %q: %q", report, c.OAuth2Proxy)
		}
	}
	// A validation error comes with the warnings found before it.
	_, warnings, err = Load([]string{"--config", write(t, "c.toml", minimalTOML+"typo_key = 1\nupstreams = [\"http://x\"]\ncookie_samesite = \"sometimes\"\n")}, env(nil))
	if err == nil || len(warnings) != 2 {
		t.Errorf("error %v with warnings %q, want both warnings", err, warnings)
	}
}

// Every option oauth2-proxy v7.15 has (its --help, in testdata) is in the
// table, and every option of the table is oauth2-proxy's.
func TestEveryOAuth2ProxyOptionIsClassified(t *testing.T) {
	data, err := os.ReadFile("testdata/oauth2-proxy-flags.txt")
	if err != nil {
		t.Fatal(err)
	}
	flags := map[string]bool{}
	for line := range strings.SplitSeq(strings.TrimSpace(string(data)), "\n") {
		if !strings.HasPrefix(line, "#") {
			flags[strings.TrimSpace(line)] = true
		}
	}
	classified := map[string]bool{}
	for _, o := range oauth2ProxyOptions {
		if !flags[o.flagName()] {
			t.Errorf("%s (--%s) is not an oauth2-proxy option", o.name, o.flagName())
		}
		classified[o.flagName()] = true
		if o.class == o2pSame {
			if _, ok := lookup(o.name); !ok {
				t.Errorf("%s is marked same but is no key of ours", o.name)
			}
		}
		if o.class == o2pAlias {
			if _, ok := lookup(o.note); !ok {
				t.Errorf("%s is an alias of %q, no key of ours", o.name, o.note)
			}
		}
	}
	for f := range flags {
		if !classified[f] {
			t.Errorf("oauth2-proxy's --%s is not classified", f)
		}
	}
}
