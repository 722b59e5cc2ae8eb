package oidcflow

import (
	"encoding/json"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Identity is who a token speaks for, mapped with the configured claims.
type Identity struct {
	Subject       string
	User          string // user_id_claim, falling back to sub
	Email         string
	EmailVerified bool
	// EmailUnverified: the IdP said email_verified false (not merely
	// left it out, as Entra ID does).
	EmailUnverified   bool
	PreferredUsername string
	Groups            []string // oidc_groups_claim values plus ZITADEL role keys, sorted, unique
	// ZITADEL: the user's organization (urn:zitadel:iam:user:resourceowner:id,
	// present when the scope urn:zitadel:iam:user:resourceowner was granted)
	// and each role with the organization that granted it ("role@orgId").
	OrgID      string
	OrgDomain  string // urn:zitadel:iam:user:resourceowner:primary_domain
	RoleGrants []string
	// How the user signed in (ID tokens only; ZITADEL puts neither in
	// access tokens, userinfo or introspection): auth_time (zero when
	// absent) and amr (RFC 8176: pwd, mfa, otp, user, …).
	AuthTime time.Time
	AMR      []string
	// ClaimValues are the header values of the claim_headers claims
	// present (Config.ClaimHeaders), by claim path: cleaned, bounded,
	// formatted as claimHeaderValue says.
	ClaimValues map[string]string
}

// ZITADEL's claims of the user's organization (scope
// urn:zitadel:iam:user:resourceowner).
const (
	OrgIDClaim     = "urn:zitadel:iam:user:resourceowner:id"
	OrgDomainClaim = "urn:zitadel:iam:user:resourceowner:primary_domain"
)

// zitadelRolesClaim is the role claim for the requesting client's project;
// zitadelRolePrefix/zitadelRoleSuffix frame the per-project one
// (urn:zitadel:iam:org:project:<projectid>:roles). zitadel.md §1.3.
const (
	zitadelRolesClaim = "urn:zitadel:iam:org:project:roles"
	zitadelRolePrefix = "urn:zitadel:iam:org:project:"
	zitadelRoleSuffix = ":roles"
)

// IdentityFromClaims maps a flat claim set (ID token, userinfo or
// introspection) onto an Identity.
func (p *Provider) IdentityFromClaims(claims map[string]any) Identity {
	id := Identity{
		Subject:           headerSafe(stringClaim(claims, "sub")),
		User:              headerSafe(stringClaim(claims, p.cfg.UserIDClaim)),
		Email:             headerSafe(stringClaim(claims, p.cfg.EmailClaim)),
		PreferredUsername: headerSafe(stringClaim(claims, "preferred_username")),
		Groups:            Groups(claims, p.cfg.GroupsClaim),
		OrgID:             headerSafe(stringClaim(claims, OrgIDClaim)),
		OrgDomain:         headerSafe(stringClaim(claims, OrgDomainClaim)),
		RoleGrants:        RoleGrants(claims),
		AMR:               stringList(claims["amr"]),
		ClaimValues:       p.claimValues(claims),
	}
	switch v := claims["auth_time"].(type) {
	case float64:
		if v > 0 && v < 1<<40 {
			id.AuthTime = time.Unix(int64(v), 0)
		}
	case json.Number:
		if n, err := v.Int64(); err == nil && n > 0 && n < 1<<40 {
			id.AuthTime = time.Unix(n, 0)
		}
	}
	for i, g := range id.Groups {
		id.Groups[i] = headerSafe(g)
	}
	if v, ok := claims["email_verified"].(bool); ok {
		id.EmailVerified, id.EmailUnverified = v, !v
	}
	if id.User == "" {
		id.User = id.Subject
	}
	return id
}

// claimAt is the claim called name, or, when there is none of that name
// and the name has dots, the value at that path into nested objects
// ("ext.groups", Keycloak's "realm_access.roles"), as oauth2-proxy reads
// its claim settings. At every level the whole rest of the name is tried
// before it is split, so names that hold dots or colons themselves are
// found: ZITADEL's "urn:zitadel:iam:org:project:roles" as it is, and in
// "urn:zitadel:iam:user:metadata.team.lead" the key "team.lead".
func claimAt(claims map[string]any, name string) any {
	steps := maxClaimPathSteps
	return claimPath(claims, name, &steps)
}

// claimPath is claimAt within m, with at most *steps splits tried (a
// hostile claim set can't make a path lookup expensive).
func claimPath(m map[string]any, name string, steps *int) any {
	if v, ok := m[name]; ok || !strings.Contains(name, ".") {
		return v
	}
	for i := 0; i < len(name); i++ {
		if name[i] != '.' {
			continue
		}
		if *steps--; *steps < 0 {
			return nil
		}
		if sub, ok := m[name[:i]].(map[string]any); ok {
			if v := claimPath(sub, name[i+1:], steps); v != nil {
				return v
			}
		}
	}
	return nil
}

func stringClaim(claims map[string]any, name string) string {
	switch v := claimAt(claims, name).(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	case float64:
		b, _ := json.Marshal(v)
		return string(b)
	}
	return ""
}

// stringList reads a claim that is a list of strings (or one string),
// made header-safe.
func stringList(v any) []string {
	var out []string
	switch t := v.(type) {
	case []any:
		for _, e := range t {
			if s, ok := e.(string); ok && s != "" {
				out = append(out, headerSafe(s))
			}
		}
	case []string:
		for _, s := range t {
			out = append(out, headerSafe(s))
		}
	case string:
		if t != "" {
			out = append(out, headerSafe(t))
		}
	}
	return out
}

// RoleGrants returns "role@orgId" for each role of ZITADEL's role claims
// and each organization that granted it ({"role": {"<orgid>": "<domain>"}}),
// sorted and unique: allowed_groups entries of that shape match them.
func RoleGrants(claims map[string]any) []string {
	var out []string
	for _, v := range roleClaims(claims) {
		out = append(out, roleGrants(v)...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func roleGrants(v any) []string {
	var out []string
	switch r := v.(type) {
	case map[string]any:
		for role, orgs := range r {
			if m, ok := orgs.(map[string]any); ok && role != "" {
				for org := range m {
					if org != "" {
						out = append(out, headerSafe(role+"@"+org))
					}
				}
			}
		}
	case []any:
		for _, item := range r {
			out = append(out, roleGrants(item)...)
		}
	}
	return out
}

// Groups returns the user's groups from a claim set: the values of
// groupsClaim (a list of strings or one string) plus the role keys of
// ZITADEL's role claims, which are objects {"role": {"<orgid>": "<domain>"}}
// under both claim names (CONTRACT.md §5). No ZITADEL Action is needed.
func Groups(claims map[string]any, groupsClaim string) []string {
	out := stringList(claimAt(claims, groupsClaim))
	for _, v := range roleClaims(claims) {
		out = append(out, roleKeys(v)...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// roleKeys reads the role names of one ZITADEL role claim. The source type
// is map[string]map[string]string; the docs show it wrapped in an array, so
// that shape is accepted too.
func roleKeys(v any) []string {
	var out []string
	switch r := v.(type) {
	case map[string]any:
		for role := range r {
			if role != "" {
				out = append(out, role)
			}
		}
	case []any:
		for _, item := range r {
			out = append(out, roleKeys(item)...)
		}
	}
	return out
}

// maxClaimBytes bounds one identity value that becomes a header.
const maxClaimBytes = 4 << 10

// headerSafe makes a claim usable as an HTTP header value: control
// characters (CR, LF, NUL, …) are dropped and overlong values cut. Doing it
// here, once per login or token, keeps it off the per-Check path.
func headerSafe(v string) string {
	clean := true
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 && c != '\t' || c == 0x7f {
			clean = false
			break
		}
	}
	if !clean {
		v = strings.Map(func(r rune) rune {
			if r < 0x20 && r != '\t' || r == 0x7f {
				return -1
			}
			return r
		}, v)
	}
	if !utf8.ValidString(v) {
		v = strings.ToValidUTF8(v, "")
	}
	if len(v) > maxClaimBytes {
		n := maxClaimBytes
		for n > 0 && !utf8.RuneStart(v[n]) {
			n-- // never cut a character in half
		}
		v = v[:n]
	}
	return v
}

// tokenSafe reports whether a token from the IdP can be passed on in a
// header as it is: visible ASCII only (RFC 6750 b64token and JWTs are).
func tokenSafe(t string) bool {
	for i := 0; i < len(t); i++ {
		if t[i] < 0x21 || t[i] > 0x7e {
			return false
		}
	}
	return true
}

// roleClaims are the values of ZITADEL's role claims in a claim set: the
// project's own (urn:zitadel:iam:org:project:roles) and every
// urn:zitadel:iam:org:project:<id>:roles.
func roleClaims(claims map[string]any) []any {
	var out []any
	for name, v := range claims {
		if isRoleClaim(name) {
			out = append(out, v)
		}
	}
	return out
}
