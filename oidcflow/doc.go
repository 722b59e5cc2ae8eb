// Package oidcflow talks to ZITADEL (or any OpenID Provider) through
// github.com/zitadel/oidc/v3:
//
//   - provider.go, discovery.go: discovery with retry and backoff (and
//     RFC 9207's authorization_response_iss_parameter_supported), the
//     relying party, the verifiers;
//   - login.go: the authorization URL with state, nonce and PKCE S256;
//   - exchange.go: the code exchange (client_secret_basic) and ID token
//     verification (iss, aud, azp, exp, iat, nonce, an asymmetric algorithm
//     allow-list), with the userinfo fallback for identity claims;
//   - keys.go: the JWKS, refetched on an unknown kid (always for tokens from
//     our own token requests, rate-limited for untrusted input);
//   - identity.go: claims to identity, ZITADEL's role claims (both claim
//     names, the role → org id → domain shape) counted as groups;
//   - refresh.go: refresh with rotating refresh tokens (shared calls, a grace
//     cache), revocation (RFC 7009);
//   - bearer.go: API access tokens, JWTs verified locally or any token by
//     introspection (RFC 7662), cached;
//   - logout.go: back-channel logout tokens; endsession.go: the end-session
//     URL for a browser logout;
//   - shared.go: one IdP call for concurrent callers, bounded by idp_timeout;
//     call.go, httpclient.go: call names for traces, the HTTP client.
//
// It follows the library's lower-level route (../shared/zitadel.md §2.2): no
// http.ResponseWriter exists inside an Envoy Check, so the pending login is a
// value (Login) the caller keeps in a cookie, and the nonce reaches the shared
// verifier through the context.
//
// It knows nothing about Envoy or cookies. Errors are sorted by the sentinels
// in errors.go.
package oidcflow
