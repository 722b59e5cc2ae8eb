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
	if err := authz.CheckUpstreamHeader(h); h != "" && err != nil {
		r.fail("identity_jwt_header", "%v (or \"\" to send none)", err)
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
