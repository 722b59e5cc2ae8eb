// Package oidcflow talks to ZITADEL (or any OpenID Provider) through
// github.com/zitadel/oidc/v3: the login (authorization code with PKCE),
// refresh, logout, and the access tokens of API callers.
//
// The login client:
//
//   - provider.go: Config, the Provider and its options; New does no I/O,
//     Serve retries discovery with jittered backoff until it succeeds, and
//     builds the relying party and the ID token verifiers (an asymmetric
//     algorithm allow-list, whatever discovery advertises);
//   - discovery.go: the discovery document (its issuer must match exactly),
//     Endpoints for an IdP without one (skip_oidc_discovery), and RFC 9207's
//     iss check on authorization responses (CheckResponseIssuer);
//   - issuers.go: Issuers, the discovery document and JWKS of one issuer
//     shared by every Provider (one per app) that uses it;
//   - keys.go: the JWKS, refetched on an unknown kid (always for tokens from
//     our own token requests, rate-limited for untrusted input);
//   - clientauth.go: how the client authenticates (client_auth_method:
//     client_secret_basic, client_secret_post, none, private_key_jwt with a
//     ZITADEL KeyFile), and the rate-limited hint when the IdP refuses it;
//   - login.go: Login (state, nonce, PKCE verifier) and the authorization URL
//     with the S256 challenge;
//   - exchange.go: the code exchange and ID token verification (iss, aud,
//     azp, exp, iat, nonce, at_hash), with the userinfo fallback for identity
//     claims, and classify, which maps the IdP's answers onto the sentinels;
//   - claims.go: ID token claims read leniently where it does no harm
//     (optional claims of the wrong JSON type dropped, not fatal);
//   - identity.go: claims to Identity, ZITADEL's role claims (both claim
//     names, the role → org id → domain shape) counted as groups and as
//     role@org grants, every value made header-safe; claim paths (a whole
//     name first, then dotted into objects);
//   - claimheaders.go: claim_headers, the configured claims' values as
//     header values (lists joined, role claims as role names, objects as
//     JSON; cleaned and bounded);
//   - refresh.go: refresh with rotating refresh tokens (shared calls, a grace
//     cache), revocation (RFC 7009);
//   - tokenexchange.go: RFC 8693 token exchange of a user's access token for
//     an upstream's audience (one call; authz keeps and shares the result);
//   - logout.go: back-channel logout tokens; endsession.go: the end-session
//     URL for a browser logout and the backend_logout_url call.
//
// API callers' access tokens:
//
//   - bearer.go: Bearer, BearerConfig and Authenticate, which looks the
//     token up in the cache, refuses what can't be an access token, and
//     verifies a JWT locally or any token by introspection;
//   - tokencache.go: TokenCache, verdicts cached under a salted SHA-256 of
//     the token, never the token;
//   - tokenshape.go: what a token is, read without verifying it (RFC 6750
//     syntax, JWT or opaque, an ID token posing as an access token, its iss);
//   - jwt.go: local JWT verification, the accepted audiences and the
//     verifiers of extra_jwt_issuers;
//   - introspect.go: RFC 7662 introspection and its client;
//   - budget.go: introspection_budget, bounding introspections of tokens the
//     cache doesn't know.
//
// Shared by both:
//
//   - shared.go: one IdP call for concurrent callers, bounded by idp_timeout;
//   - call.go, httpclient.go: call names for traces, and the one HTTP client
//     per IdP (timeouts, 1 MiB bodies, no redirects);
//   - errors.go: the sentinels callers sort errors by.
//
// It follows the library's lower-level route (../shared/zitadel.md §2.2): no
// http.ResponseWriter exists inside an Envoy Check, so the pending login is a
// value (Login) the caller keeps in a cookie, and the nonce reaches the shared
// verifier through the context.
//
// It knows nothing about Envoy or cookies.
package oidcflow
