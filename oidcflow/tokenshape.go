package oidcflow

import (
	"encoding/base64"
	"encoding/json"
	"strings"
)

// What a bearer token is, read before (and without) verifying it: only to
// refuse it early or to choose how to verify it, never to accept it.

// maxTokenBytes bounds a bearer token we verify at all: JWTs with many
// roles run to a few KiB; Envoy's own header limit is 60 KiB.
const maxTokenBytes = 16 << 10

// plausibleToken: RFC 6750 §2.1's b64token, ALPHA / DIGIT / "-" / "." /
// "_" / "~" / "+" / "/" followed by "=" padding, of a sane length. Anything
// else can't be an access token of any IdP and is refused without a call.
func plausibleToken(token string) bool {
	if len(token) < 8 || len(token) > maxTokenBytes {
		return false
	}
	padding := false
	for i := 0; i < len(token); i++ {
		c := token[i]
		switch {
		case c == '=':
			padding = true
		case padding:
			return false // only "=" after the first "="
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '.', c == '_', c == '~', c == '+', c == '/':
		default:
			return false
		}
	}
	return true
}

// looksLikeJWT: three base64url segments whose first decodes to a JSON
// header with an alg.
func looksLikeJWT(token string) bool {
	if strings.Count(token, ".") != 2 {
		return false
	}
	head, _, _ := strings.Cut(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return false
	}
	var h struct {
		Alg string `json:"alg"`
	}
	return json.Unmarshal(raw, &h) == nil && h.Alg != ""
}

// idTokenShaped says why a JWT is an ID token rather than an access token
// ("" when it isn't one): a typ header naming an ID token, a claim only ID
// tokens carry (at_hash, c_hash, s_hash; OpenID Connect Core §3.3.2.11,
// FAPI's s_hash), Keycloak's typ claim "ID" or AWS Cognito's token_use
// "id". Not nonce: Keycloak puts the login's nonce in access tokens too.
func idTokenShaped(token string) string {
	if strings.Count(token, ".") != 2 {
		return ""
	}
	parts := strings.SplitN(token, ".", 3)
	if raw, err := base64.RawURLEncoding.DecodeString(parts[0]); err == nil {
		var h struct {
			Typ string `json:"typ"`
		}
		if json.Unmarshal(raw, &h) == nil {
			switch t := strings.ToLower(h.Typ); t {
			case "id_token", "id_token+jwt", "id+jwt", "application/id_token+jwt", "logout+jwt", "application/logout+jwt":
				return "typ " + t
			}
		}
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c map[string]json.RawMessage
	if json.Unmarshal(raw, &c) != nil {
		return ""
	}
	for _, claim := range []string{"at_hash", "c_hash", "s_hash"} {
		if _, ok := c[claim]; ok {
			return "it carries " + claim
		}
	}
	if string(c["token_use"]) == `"id"` {
		return "token_use id"
	}
	if string(c["typ"]) == `"ID"` || string(c["typ"]) == `"Logout"` {
		return "typ claim " + string(c["typ"])
	}
	return ""
}

// unverifiedIssuer is a JWT's iss, read without verifying it: only to
// choose the verifier, which then checks it.
func unverifiedIssuer(token string) string {
	parts := strings.SplitN(token, ".", 3)
	if len(parts) != 3 {
		return ""
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		Issuer string `json:"iss"`
	}
	_ = json.Unmarshal(raw, &c)
	return c.Issuer
}
