package oidcflow

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzIdentityHeaders: whatever claims the IdP sends, every identity value
// that becomes an upstream header is free of control characters (no CR/LF
// header injection) and bounded in length.
func FuzzIdentityHeaders(f *testing.F) {
	p := &Provider{logger: slog.New(slog.DiscardHandler), cfg: Config{UserIDClaim: "sub", EmailClaim: "email", GroupsClaim: "groups",
		ClaimHeaders: map[string]string{"x-a": "a", "x-b": "b.c", "x-r": "urn:zitadel:iam:org:project:roles", "x-sub": "sub"}}}
	f.Add(`{"a":["x\r\n",1,true,{"k":"\u0000"}],"b":{"c":{"d":"\u007f"}},"urn:zitadel:iam:org:project:roles":{"r\n":{}}}`)
	f.Add(`{"sub":"u1","email":"a@example.com","groups":["x"]}`)
	f.Add(`{"sub":"u1\r\nX-Injected: 1","email":"a@b\n","preferred_username":"\u0000bob"}`)
	f.Add(`{"sub":1,"email":["a"],"groups":"g\r\n","urn:zitadel:iam:org:project:roles":{"admin\r\nx":{"1":"d"}}}`)
	f.Add(`{"urn:zitadel:iam:org:project:123:roles":[{"role\u007f":{}}],"email_verified":"true"}`)
	f.Fuzz(func(t *testing.T, raw string) {
		var claims map[string]any
		if json.Unmarshal([]byte(raw), &claims) != nil {
			return
		}
		id := p.IdentityFromClaims(claims)
		values := append([]string{id.Subject, id.User, id.Email, id.PreferredUsername, strings.Join(id.Groups, ",")}, id.Groups...)
		for _, v := range id.ClaimValues {
			if len(v) > maxClaimHeaderBytes || v == "" {
				t.Fatalf("claim header value of %d bytes passed", len(v))
			}
			values = append(values, v)
		}
		for _, v := range values[:4] {
			if len(v) > maxClaimBytes {
				t.Fatalf("value of %d bytes passed", len(v))
			}
		}
		for _, v := range values {
			if !utf8.ValidString(v) || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }) {
				t.Fatalf("control character in %q (claims %s)", v, raw)
			}
		}
	})
}
