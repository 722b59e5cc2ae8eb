package authz

import (
	"slices"
	"strings"
)

// Per-route policy from Envoy's check_settings.context_extensions
// (envoy-ext-authz.md §1, §3). One server guards many routes differently.
const (
	extAuth          = "auth"            // any | bearer-only | session-only
	extAllowedGroups = "allowed_groups"  // comma-separated; must also hold
	extScopes        = "required_scopes" // space- or comma-separated; all must be granted
)

// routePolicy is the parsed context_extensions of one request.
type routePolicy struct {
	auth   string // "any", "bearer-only" or "session-only"
	groups []string
	scopes []string
}

// parseRoutePolicy reads the context extensions. An unknown auth value is
// an error: a typo in the Envoy config must not open a route.
func parseRoutePolicy(ext map[string]string) (routePolicy, bool) {
	rp := routePolicy{auth: "any"}
	if len(ext) == 0 {
		return rp, true
	}
	switch a := strings.TrimSpace(ext[extAuth]); a {
	case "", "any":
	case "bearer-only", "session-only":
		rp.auth = a
	default:
		return rp, false
	}
	rp.groups = splitList(ext[extAllowedGroups])
	rp.scopes = splitList(ext[extScopes])
	return rp, true
}

func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })
}

// check applies the route's allowed_groups and required_scopes; it returns
// a reason label, or "" when allowed.
func (rp routePolicy) check(groups, scopes []string) string {
	if len(rp.groups) > 0 && !slices.ContainsFunc(groups, func(g string) bool { return slices.Contains(rp.groups, g) }) {
		return "route_not_in_group"
	}
	for _, want := range rp.scopes {
		if !slices.Contains(scopes, want) {
			return "missing_scope"
		}
	}
	return ""
}
