package authz

import (
	"slices"
	"strconv"
	"strings"
	"time"
)

// Per-route policy from Envoy's check_settings.context_extensions
// (envoy-ext-authz.md §1, §3). One server guards many routes differently.
const (
	extAuth          = "auth"                    // any | bearer-only | session-only
	extAllowedGroups = "allowed_groups"          // comma-separated; must also hold
	extScopes        = "required_scopes"         // space- or comma-separated; all must be granted
	extOrgs          = "allowed_organizations"   // comma-separated ZITADEL organization ids
	extMaxAge        = "max_age"                 // seconds since the user last authenticated
	extAMR           = "required_amr"            // comma-separated: one must be in the ID token's amr
	extCSRF          = "csrf"                    // on (default) | off: the Origin check of csrf.go
	extAllowIf       = "allow_if"                // rule names (rulecheck.go): every one must hold
	extDenyIf        = "deny_if"                 // rule names: any one that holds denies
	extAudience      = "audience"                // a bearer token must carry it in aud (RFC 8707 resource, ZITADEL project id)
	extUpstreamAud   = "upstream_token_audience" // the upstream gets a token exchanged for this audience (RFC 8693)
	// extUpstreamHeader puts the exchanged token in a header of its own,
	// leaving the token headers as configured.
	extUpstreamHeader = "upstream_token_header"
)

// routePolicy is the parsed context_extensions of one request.
type routePolicy struct {
	auth   string // "any", "bearer-only" or "session-only"
	groups []string
	scopes []string
	orgs   []string
	maxAge int64 // seconds; -1: none
	amr    []string
	// csrfOff: state-changing requests with a session cookie may come
	// from other origins (an API that takes cross-site calls on purpose).
	csrfOff bool
	// allowIf and denyIf are the route's rules (rulecheck.go); rulesSet:
	// the route names them (either key, even empty), so the app's
	// defaults don't apply.
	allowIf, denyIf []string
	rulesSet        bool
	unknownRule     string // the first of them the configuration doesn't define ("": none)
	// audience a bearer token must carry ("": any of ours).
	audience string
	// upstreamAudience: the upstream gets the user's access token
	// exchanged for this audience (RFC 8693) instead of the token itself
	// ("": the user's own, as configured).
	upstreamAudience string
	// upstreamHeader is upstream_token_header (lower case): the exchanged
	// token goes there, beside the user's ("": it replaces the user's).
	upstreamHeader string
}

// parseRoutePolicy reads context extensions CheckRouteKeys found no
// problem in.
func parseRoutePolicy(ext map[string]string) routePolicy {
	rp := routePolicy{auth: "any", maxAge: -1}
	if a := strings.TrimSpace(ext[extAuth]); a != "" {
		rp.auth = a
	}
	rp.csrfOff = strings.TrimSpace(ext[extCSRF]) == "off"
	rp.groups = splitList(ext[extAllowedGroups])
	rp.scopes = splitList(ext[extScopes])
	rp.orgs = splitList(ext[extOrgs])
	rp.amr = splitList(ext[extAMR])
	allow, hasAllow := ext[extAllowIf]
	deny, hasDeny := ext[extDenyIf]
	rp.allowIf, rp.denyIf, rp.rulesSet = RuleNames(allow), RuleNames(deny), hasAllow || hasDeny
	rp.audience = strings.TrimSpace(ext[extAudience])
	rp.upstreamAudience = strings.TrimSpace(ext[extUpstreamAud])
	rp.upstreamHeader = strings.ToLower(strings.TrimSpace(ext[extUpstreamHeader]))
	if v := strings.TrimSpace(ext[extMaxAge]); v != "" {
		rp.maxAge, _ = strconv.ParseInt(v, 10, 64) // checked: seconds
	}
	return rp
}

func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })
}

// check applies the route's allowed_organizations, allowed_groups and
// required_scopes; it returns a reason label, or "" when allowed.
func (rp routePolicy) check(u user, scopes []string) Reason {
	if len(rp.orgs) > 0 && (u.orgID == "" || !slices.Contains(rp.orgs, u.orgID)) {
		return ReasonRouteWrongOrg
	}
	if len(rp.groups) > 0 && !u.inAnyGroup(rp.groups) {
		return ReasonRouteNotInGroup
	}
	for _, want := range rp.scopes {
		if !slices.Contains(scopes, want) {
			return ReasonMissingScope
		}
	}
	return ""
}

// stepUp says what the route wants of the sign-in itself that u lacks:
// "max_age" (authenticated too long ago, or when is unknown), "amr" (none
// of the required methods), or "" when the sign-in will do.
func (rp routePolicy) stepUp(u user, now time.Time) string {
	if rp.maxAge >= 0 && (u.authTime.IsZero() || now.Sub(u.authTime) > time.Duration(rp.maxAge)*time.Second+stepUpGrace) {
		return "max_age"
	}
	if len(rp.amr) > 0 && !slices.ContainsFunc(u.amr, func(m string) bool { return slices.Contains(rp.amr, m) }) {
		return "amr"
	}
	return ""
}

// stepUpGrace lets a session that just came back from a step-up through
// (the redirects take a moment): without it max_age = 0 would loop.
const stepUpGrace = 5 * time.Second
