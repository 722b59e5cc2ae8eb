// Package session keeps logins in cookies: it encrypts session and
// login-state payloads (proto/sessionpb) with AES-GCM keyed from
// cookie_secret, splits large sessions into NAME_0, NAME_1, … chunks (at most
// as many as fit in a request behind Envoy), bounds the number of concurrent
// login flows a browser can hold, and caches decoded sessions by a SHA-256
// hash of the cookie value.
//
// In redis mode (WithStore, store.go) the session lives in a Store
// (redisstore) encrypted under a key only the cookie holds; the cookie
// carries a ticket (id and key), and an L1 cache keeps decoded sessions for
// a short TTL. Jar methods that reach the store take a context and say so
// in their names: Load, LoadFresh, Save and End; ClearCookies does no I/O.
//
// A tampered, truncated, expired or foreign cookie is indistinguishable from
// no cookie at all: every such case returns ErrNoSession (CONTRACT.md §4).
// The package knows nothing about Envoy or the IdP; it reads cookie values
// from a map and returns Set-Cookie header values.
package session
