package config

import (
	"crypto/tls"
	"crypto/x509"
	"net/url"
	"strings"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/oidcflow"
)

// buildIdPExtras: IdPs without discovery (skip_oidc_discovery with
// login_url, redeem_url, oidc_jwks_url, profile_url), other JWT issuers
// (extra_jwt_issuers) and how the IdP's TLS is checked
// (provider_ca_files, ssl_insecure_skip_verify), as oauth2-proxy's keys of
// the same names say.
func (r *resolver) buildIdPExtras(c *Config) {
	if r.boolean("skip_oidc_discovery") {
		e := &oidcflow.Endpoints{Authorization: r.str("login_url"), Token: r.str("redeem_url"), JWKS: r.str("oidc_jwks_url"), Userinfo: r.str("profile_url")}
		for key, v := range map[string]string{"login_url": e.Authorization, "redeem_url": e.Token, "oidc_jwks_url": e.JWKS} {
			if v == "" {
				r.fail(key, "required with skip_oidc_discovery (the IdP's endpoints: login_url, redeem_url, oidc_jwks_url)")
			}
		}
		for key, v := range map[string]string{"login_url": e.Authorization, "redeem_url": e.Token, "oidc_jwks_url": e.JWKS, "profile_url": e.Userinfo} {
			if u, err := url.Parse(v); v != "" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
				r.fail(key, "%q is not an http(s) URL", v)
			}
		}
		c.OIDC.Endpoints = e
	} else {
		for _, key := range []string{"login_url", "redeem_url", "oidc_jwks_url", "profile_url"} {
			if r.str(key) != "" {
				r.warnings = append(r.warnings, r.where+key+": ignored without skip_oidc_discovery = true (discovery names the endpoints)")
			}
		}
	}
	for _, pair := range r.list("extra_jwt_issuers") {
		iss, aud, ok := strings.Cut(pair, "=")
		if u, err := url.Parse(iss); !ok || aud == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			r.fail("extra_jwt_issuers", "entry %q: want issuer=audience (https://issuer.example=my-api)", pair)
			continue
		}
		if c.Bearer.ExtraIssuers == nil {
			c.Bearer.ExtraIssuers = map[string][]string{}
		}
		c.Bearer.ExtraIssuers[iss] = append(c.Bearer.ExtraIssuers[iss], aud)
	}
	if len(c.Bearer.ExtraIssuers) > 0 && !r.boolean("skip_jwt_bearer_tokens") {
		r.warnings = append(r.warnings, r.where+"extra_jwt_issuers: no effect without skip_jwt_bearer_tokens = true")
	}
}

// idpTLS is the TLS configuration for the IdP: the system's roots plus
// provider_ca_files, or no verification with ssl_insecure_skip_verify
// (loudly warned); nil when neither is set.
func (r *resolver) idpTLS(c *Config) *tls.Config {
	files, insecure := r.list("provider_ca_files"), r.boolean("ssl_insecure_skip_verify")
	if len(files) == 0 && !insecure {
		return nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(files) > 0 {
		roots, err := x509.SystemCertPool()
		if err != nil {
			roots = x509.NewCertPool()
		}
		for _, f := range files {
			data, ok := r.readFile(c, "provider_ca_files", f)
			if ok && !roots.AppendCertsFromPEM(data) {
				r.fail("provider_ca_files", "%s holds no PEM certificate", f)
			}
		}
		cfg.RootCAs = roots
	}
	if insecure {
		r.warnings = append(r.warnings, "ssl_insecure_skip_verify: the IdP's TLS certificate is NOT verified: anyone on the network path can impersonate the IdP and log in as anyone. Use provider_ca_files for a private CA instead")
		cfg.InsecureSkipVerify = true
	}
	return cfg
}

// clientAuth reads client_auth_method and what it needs: a secret for
// basic and post, none for none, client_key_file for private_key_jwt
// (whose clientId is the client id when client_id is unset).
func (r *resolver) clientAuth(c *Config, noDefault bool) {
	method := r.str("client_auth_method")
	c.OIDC.AuthMethod = method
	keyPath := r.str("client_key_file")
	switch method {
	case oidcflow.AuthBasic, oidcflow.AuthPost:
		if c.OIDC.ClientSecret == "" && !noDefault {
			r.fail("client_secret", "required: the client secret of your ZITADEL web application (authentication method %s), or client_secret_file; a PKCE app needs client_auth_method = \"none\", a JWT app \"private_key_jwt\"", oidcflow.ConsoleName(method))
		}
	case oidcflow.AuthNone:
		if c.OIDC.ClientSecret != "" {
			r.warnings = append(r.warnings, r.where+"client_secret: set, but client_auth_method is none (a public PKCE client): the secret is not sent")
			c.OIDC.ClientSecret = ""
		}
	case oidcflow.AuthPrivateKeyJWT:
		if keyPath == "" {
			if !noDefault {
				r.fail("client_key_file", "required with client_auth_method = \"private_key_jwt\": the key file ZITADEL's console downloads for a JWT app (app → Keys → New)")
			}
			return
		}
	default:
		r.fail("client_auth_method", "want basic (ZITADEL: Code), post (Post), none (PKCE) or private_key_jwt (JWT), got %q", method)
		return
	}
	if keyPath == "" {
		return
	}
	if method != oidcflow.AuthPrivateKeyJWT {
		r.fail("client_key_file", "set, but client_auth_method is %q: set client_auth_method = \"private_key_jwt\" to use the key", method)
		return
	}
	data, ok := r.readFile(c, "client_key_file", keyPath)
	if !ok {
		return
	}
	k, err := oidcflow.ParseKeyFile(data)
	if err != nil {
		r.fail("client_key_file", "%s: %v", keyPath, err)
		return
	}
	switch {
	case c.OIDC.ClientID == "":
		c.OIDC.ClientID = k.ClientID
	case c.OIDC.ClientID != k.ClientID:
		r.fail("client_key_file", "%s is the key of client %q, but client_id is %q", keyPath, k.ClientID, c.OIDC.ClientID)
		return
	}
	c.OIDC.ClientKey = k
}
