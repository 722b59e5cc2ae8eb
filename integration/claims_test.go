package integration_test

import (
	"net/http"
	"testing"
)

// An optional standard claim of the wrong JSON type doesn't fail the
// login (mockoidc sends address as a string; Cognito email_verified as
// "true"), while the claims a login relies on stay strict.
func TestMalformedOptionalClaimsDontFailTheLogin(t *testing.T) {
	for name, tc := range map[string]struct {
		edit func(map[string]any)
		ok   bool
	}{
		"address as a string":          {func(c map[string]any) { c["address"] = "1 Main Street" }, true},
		"updated_at as a string":       {func(c map[string]any) { c["updated_at"] = "yesterday" }, true},
		"phone_number_verified string": {func(c map[string]any) { c["phone_number_verified"] = "yes" }, true},
		`email_verified "true"`:        {func(c map[string]any) { c["email_verified"] = "true" }, true},
		"sub as a number":              {func(c map[string]any) { c["sub"] = 42 }, false},
		"nonce as a number":            {func(c map[string]any) { c["nonce"] = 7 }, false},
	} {
		t.Run(name, func(t *testing.T) {
			// email_domains limited, so an unverified e-mail would be refused.
			st := startStack(t, stackOptions{config: map[string]any{"email_domains": []string{"example.com"}}})
			st.IdP.SetTamper(tokenTamper(t, st.IdP, resign(t, st.IdP, tc.edit)))
			b := newBrowser(t, "alice", "alice-password")
			r, _ := b.follow(st.Front.URL + "/")
			if tc.ok {
				if saw := upstreamSaw(t, r); saw.Headers["x-forwarded-email"] != "alice@example.com" {
					t.Errorf("upstream saw %+v", saw)
				}
			} else if r.StatusCode != http.StatusForbidden {
				t.Errorf("a malformed required claim: %s, want the refused sign-in", describe(r))
			}
		})
	}
}
