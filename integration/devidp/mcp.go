package devidp

import "github.com/zitadel/oidc/v3/pkg/oidc"

// MCPClient is the MCP client of the project, registered beforehand as
// ZITADEL's console makes one (no dynamic registration): a public client
// (a native app with PKCE: auth method none, no secret) whose access tokens
// are JWTs, redirected to a loopback listener on whatever port it took
// (RFC 8252 §7.3): id mcp@zitadel-ext-authz, redirect URI
// http://127.0.0.1:PORT/callback. A server takes its tokens with
// extra_jwt_audiences.
func MCPClient() Client {
	return Client{
		ID:               "mcp@zitadel-ext-authz",
		RedirectURIGlobs: []string{"http://127.0.0.1:*/callback"},
		JWTAccessTokens:  true,
		AuthMethod:       oidc.AuthMethodNone,
	}
}
