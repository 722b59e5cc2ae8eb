package oidcflow_test

import (
	"slices"
	"testing"
	"time"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/devidp"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/oidcflow"
)

// A verified token's aud is the Bearer's Audiences, from a JWT and from an
// introspection answer alike, with ZITADEL's project audience scope and an
// RFC 8707 resource indicator; the cached outcome keeps them.
func TestBearerAudiences(t *testing.T) {
	r := newBearerRig(t, oidcflow.BearerConfig{PositiveTTL: time.Hour}, 1<<20)
	const resource = "https://mcp.example.com/mcp"
	for _, tc := range []struct {
		name   string
		client devidp.Client
		via    string
	}{{"opaque token by introspection", devidp.DefaultClient(), "introspection"}, {"JWT", jwtClient, "jwt"}} {
		t.Run(tc.name, func(t *testing.T) {
			plain := r.token(t, tc.client, "alice")
			project, err := r.idp.Tokens(t.Context(), tc.client, "alice", "alice-password", "openid", devidp.ProjectAudienceScope(devidp.ProjectID))
			if err != nil {
				t.Fatal(err)
			}
			indicated, err := r.idp.TokensForResource(t.Context(), tc.client, "alice", "alice-password", resource)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				name, token string
				want        []string
			}{
				{"client only", plain, []string{tc.client.ID}},
				{"project audience scope", project.AccessToken, []string{tc.client.ID, devidp.ProjectID}},
				{"RFC 8707 resource", indicated.AccessToken, []string{tc.client.ID, resource}},
			} {
				for _, pass := range []string{"verified", "cached"} {
					b, err := r.p.Authenticate(t.Context(), c.token)
					if err != nil {
						t.Fatalf("Authenticate(%s, %s): %v", c.name, pass, err)
					}
					if b.Via != tc.via || !slices.Equal(b.Audiences, c.want) {
						t.Errorf("Authenticate(%s, %s): via %s, audiences %q, want %s %q", c.name, pass, b.Via, b.Audiences, tc.via, c.want)
					}
				}
			}
		})
	}
}
