// Package session keeps logins in cookies: it encrypts session and
// login-state payloads (proto/sessionpb) with AES-GCM keyed from
// cookie_secret, splits large sessions into NAME_0, NAME_1, … chunks, bounds
// the number of concurrent login flows a browser can hold, and caches decoded
// sessions by a SHA-256 hash of the cookie value.
//
// A tampered, truncated, expired or foreign cookie is indistinguishable from
// no cookie at all: every such case returns ErrNoSession (CONTRACT.md §4).
// The package knows nothing about Envoy or the IdP; it reads cookie values
// from a map and returns Set-Cookie header values.
package session
