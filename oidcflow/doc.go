// Package oidcflow talks to ZITADEL (or any OpenID Provider) through
// github.com/zitadel/oidc/v3: discovery with retry and backoff, the
// authorization URL with state, nonce and PKCE S256, the code exchange with
// client_secret_basic, ID token verification (JWKS signature with refetch on
// an unknown kid, iss, aud, azp, exp, iat, nonce, an asymmetric algorithm
// allow-list), the userinfo fallback for identity claims, and the
// end-session URL for a browser logout.
//
// It follows the library's lower-level route (../shared/zitadel.md §2.2): no
// http.ResponseWriter exists inside an Envoy Check, so the pending login is a
// value (Login) the caller keeps in a cookie, and the nonce reaches the shared
// verifier through the context. ZITADEL's role claims (both claim names, the
// role → org id → domain object shape) count as groups (roles.go).
//
// It knows nothing about Envoy or cookies. Errors are sorted by the sentinels
// in errors.go.
package oidcflow
