package oidcflow

import (
	"encoding/json"

	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// idClaims are an ID token's claims, read leniently where it does no harm:
// an optional standard claim of the wrong JSON type (address as a plain
// string, as mockoidc sends it; updated_at as a string; …) is dropped
// instead of failing the login, and email_verified given as the string
// "true" or "false" (as Amazon Cognito sends it) reads as the boolean. The
// claims a login relies on (iss, sub, aud, exp, iat, nonce, and those
// configured for the user, e-mail and groups) are not touched: they stay
// as strict as the library reads them.
type idClaims struct {
	oidc.IDTokenClaims
	// Dropped names the optional claims that were dropped, for a debug log.
	Dropped []string `json:"-"`
}

// optionalClaims are the OIDC Core §5.1 claims we don't rely on, with the
// JSON type each must have.
var optionalClaims = map[string]string{
	"name": "string", "given_name": "string", "family_name": "string", "middle_name": "string",
	"nickname": "string", "profile": "string", "picture": "string", "website": "string",
	"gender": "string", "birthdate": "string", "zoneinfo": "string", "locale": "string",
	"phone_number": "string", "phone_number_verified": "bool", "email_verified": "bool",
	"address": "object", "updated_at": "number",
}

// UnmarshalJSON cleans the optional claims, then reads the rest as the
// library does.
func (c *idClaims) UnmarshalJSON(data []byte) error {
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return err
	}
	changed := false
	for name, want := range optionalClaims {
		v, ok := m[name]
		if !ok || v == nil {
			continue
		}
		if name == "email_verified" {
			if s, ok := v.(string); ok && (s == "true" || s == "false") {
				m[name], changed = s == "true", true
				continue
			}
		}
		if !hasJSONType(v, want) {
			delete(m, name)
			c.Dropped, changed = append(c.Dropped, name), true
		}
	}
	if changed {
		var err error
		if data, err = json.Marshal(m); err != nil {
			return err
		}
	}
	return json.Unmarshal(data, &c.IDTokenClaims)
}

func hasJSONType(v any, want string) bool {
	switch want {
	case "string":
		_, ok := v.(string)
		return ok
	case "bool":
		_, ok := v.(bool)
		return ok
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "number":
		_, ok := v.(float64)
		return ok
	}
	return false
}
