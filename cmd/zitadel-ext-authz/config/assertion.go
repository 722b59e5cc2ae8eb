package config

import (
	"strings"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/idjwt"
)

// buildIdentityJWT: the signed identity assertion (identity_jwt_*): its
// header, iss and aud per app, and the keys (identity_jwt_key_file, else
// the wiring derives them from the cookie secrets).
func (r *resolver) buildIdentityJWT(c *Config) {
	h := strings.ToLower(strings.TrimSpace(r.str("identity_jwt_header")))
	if h != "" && !assertionHeaderName(h) {
		r.fail("identity_jwt_header", "%q: want a header name such as x-zitadel-ext-authz-jwt (letters, digits, '-'; not one we or HTTP use otherwise), or \"\" to send none", h)
	}
	c.Authz.IdentityJWT = authz.IdentityJWT{Header: h, Issuer: r.str("identity_jwt_issuer"), Audience: r.list("identity_jwt_audience")}
	path := r.str("identity_jwt_key_file")
	if path == "" || r.app != nil { // one key set for every app
		return
	}
	data, ok := r.readFile(c, "identity_jwt_key_file", path)
	if !ok {
		return
	}
	keys, err := idjwt.FromPEM(data)
	if err != nil {
		r.fail("identity_jwt_key_file", "%v", err)
	}
	c.IdentityJWTKeys = keys
}

// reloadIdentityKeys applies identity_jwt_key_file (the wiring replaces
// the keys in force; the old ones stay published until their assertions
// expire).
func reloadIdentityKeys(run, next *Config) { run.IdentityJWTKeys = next.IdentityJWTKeys }

// assertionHeaderName: a lower-case token that is none of the headers
// HTTP, Envoy or our identity families give a meaning of their own.
func assertionHeaderName(h string) bool {
	if strings.HasPrefix(h, ":") || strings.HasPrefix(h, "x-forwarded-") || strings.HasPrefix(h, "x-auth-request-") || strings.HasPrefix(h, "x-envoy-") {
		return false
	}
	switch h {
	case "host", "cookie", "set-cookie", "authorization", "content-length", "content-type", "connection", "te", "transfer-encoding", "upgrade", "keep-alive", "proxy-connection":
		return false
	}
	return !strings.ContainsFunc(h, func(c rune) bool { return !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') })
}
