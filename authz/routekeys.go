package authz

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/rules"
)

// The keys a route may set in Envoy's check_settings.context_extensions,
// and what each value must look like. A key we don't know, or a value we
// can't read, denies the route (500): a typo (allowed_group) or a key of
// a newer release (allow_if on an older binary) must never leave a route
// open to every signed-in user.

// AppRouteKey names the app that judges the route (apps.Router reads it).
const AppRouteKey = "app"

// RouteKey is one context_extensions key: its name, the values it takes
// and its effect, as README's per-route table shows them (a test keeps
// the two equal), and how a value is checked.
type RouteKey struct {
	Name, Values string
	check        func(v string) error
}

// routeKeys is the one list of route keys.
var routeKeys = []RouteKey{
	{extAuth, "`any` (default), `bearer-only`, `session-only`", oneOf("any", "bearer-only", "session-only")},
	{extAllowedGroups, "comma-separated", list},
	{extScopes, "space- or comma-separated", list},
	{extOrgs, "comma-separated ZITADEL organization ids", list},
	{extMaxAge, "seconds", seconds},
	{extAMR, "comma-separated RFC 8176 values", list},
	{AppRouteKey, "an app's name", nonEmpty},
	{extCSRF, "`on` (default), `off`", oneOf("on", "off")},
	{extAllowIf, "comma-separated rule names", ruleList},
	{extDenyIf, "comma-separated rule names", ruleList},
	{extAudience, "an audience", nonEmpty},
	{extUpstreamAud, "an audience", nonEmpty},
	{extUpstreamHeader, "a header name", func(v string) error { return CheckUpstreamHeader(strings.ToLower(strings.TrimSpace(v))) }},
}

// RouteKeys lists the route keys, in README's order.
func RouteKeys() []RouteKey { return slices.Clone(routeKeys) }

// RouteKeyProblem is what is wrong with one key of a route: Key is
// unknown (Nearest: the known key it most likely means, "" when none is
// close) or its Value can't be read (Problem says why).
type RouteKeyProblem struct {
	Key, Value, Nearest, Problem string
	Unknown                      bool
}

func (p RouteKeyProblem) String() string {
	if p.Unknown {
		if p.Nearest != "" {
			return fmt.Sprintf("unknown key %q (did you mean %s?)", p.Key, p.Nearest)
		}
		return fmt.Sprintf("unknown key %q", p.Key)
	}
	return fmt.Sprintf("%s: %q: %s", p.Key, p.Value, p.Problem)
}

// CheckRouteKeys reports every problem of a route's context_extensions,
// in key order; ignored are keys other services or filters read, which
// we let be (ignored_route_keys).
func CheckRouteKeys(ext map[string]string, ignored []string) []RouteKeyProblem {
	var out []RouteKeyProblem
	for _, k := range slices.Sorted(maps.Keys(ext)) {
		if p, bad := checkRouteKey(k, ext[k], ignored); bad {
			out = append(out, p)
		}
	}
	if v, ok := ext[extUpstreamHeader]; ok && strings.TrimSpace(ext[extUpstreamAud]) == "" {
		out = append(out, RouteKeyProblem{Key: extUpstreamHeader, Value: v, Problem: "needs upstream_token_audience (the token it would carry)"})
	}
	return out
}

// checkRouteKey checks one key and its value.
func checkRouteKey(k, v string, ignored []string) (RouteKeyProblem, bool) {
	i := slices.IndexFunc(routeKeys, func(rk RouteKey) bool { return rk.Name == k })
	if i < 0 {
		if slices.Contains(ignored, k) {
			return RouteKeyProblem{}, false
		}
		return RouteKeyProblem{Key: k, Value: v, Unknown: true, Nearest: nearestRouteKey(k)}, true
	}
	if err := routeKeys[i].check(v); err != nil {
		return RouteKeyProblem{Key: k, Value: v, Problem: err.Error()}, true
	}
	return RouteKeyProblem{}, false
}

// nearestRouteKey is the known key within two edits of k (or with k as
// its prefix or k as a prefix of it, such as allowed_group), "" when none.
func nearestRouteKey(k string) string {
	best, bestD := "", 3
	for _, rk := range routeKeys {
		d := editDistance(strings.ToLower(k), rk.Name)
		if strings.HasPrefix(rk.Name, k) || strings.HasPrefix(k, rk.Name) {
			d = min(d, 2)
		}
		if d < bestD {
			best, bestD = rk.Name, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b (short strings).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func oneOf(values ...string) func(string) error {
	return func(v string) error {
		if v = strings.TrimSpace(v); v == "" || slices.Contains(values, v) {
			return nil
		}
		return fmt.Errorf("want one of %s", strings.Join(values, ", "))
	}
}

// list: entries separated by commas (or spaces), none of them empty
// ("admin,,editor" or a trailing comma is likely a typo: refused).
func list(v string) error {
	if strings.TrimSpace(v) == "" {
		return fmt.Errorf("empty: remove the key, or list at least one entry")
	}
	for _, part := range strings.Split(v, ",") {
		if strings.TrimSpace(part) == "" {
			return fmt.Errorf("an empty entry: remove the extra comma")
		}
	}
	return nil
}

func nonEmpty(v string) error {
	if strings.TrimSpace(v) == "" {
		return fmt.Errorf("empty: remove the key, or give a value")
	}
	return nil
}

func seconds(v string) error {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("want a whole number of seconds (0 or more)")
	}
	return nil
}

// ruleList: rule names; an empty value names none (it still replaces the
// app's defaults).
func ruleList(v string) error {
	for _, n := range splitList(v) {
		if !rules.ValidName(n) {
			return fmt.Errorf("%q is no rule name (letters, digits and _)", n)
		}
	}
	return nil
}
