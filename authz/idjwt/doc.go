// Package idjwt signs the identity assertion zitadel-ext-authz sends with
// every allowed request (identity_jwt_header), so an upstream can verify
// who the user is instead of trusting plain headers as far as it trusts
// the network: ES256 JWTs (RFC 7519, RFC 7518 §3.4) whose keys are derived
// from the cookie secrets (HKDF, one key per secret: every replica derives
// the same ones, and rotating cookie_secrets rotates them with overlap) or
// read from a PEM file (identity_jwt_key_file), and the JWKS (RFC 7517)
// that publishes them.
//
// keys.go makes and parses keys; sign.go mints an assertion; ring.go
// holds the keys in force and publishes them, with the keys a rotation
// retired until every assertion they signed has expired.
package idjwt
