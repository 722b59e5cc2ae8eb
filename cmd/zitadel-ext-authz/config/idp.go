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
