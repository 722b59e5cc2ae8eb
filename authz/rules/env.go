package rules

import (
	"reflect"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/ext"
)

// The names rules read their inputs by.
const (
	varUser    = "user"
	varRequest = "request"
	varRoute   = "route"
	varNow     = "now"
)

// CEL type names of User and Request (ext.NativeTypes names a Go struct
// by its package's last path element and its type name).
const (
	userType    = "rules.User"
	requestType = "rules.Request"
)

// CostLimit is the evaluation cost limit of every rule (cel-go units); a
// rule whose estimated worst case exceeds it is refused by Compile.
//
// A cel-go cost unit is roughly one operation: a field read, a call, a
// comparison, one comprehension step, or ten bytes of a string scanned.
// Compile estimates a rule with every input at its size bound (MaxEntries,
// MaxRequestEntries, MaxNameSize, MaxStringSize). The limit admits a few
// exists/all over 1,000-entry lists or maps of the user, each with a
// comparison or a string function, next to string functions on the path
// or a header (one exists with startsWith over 1,000 groups is 6,000
// units; a path regular expression about 3,000), and refuses quadratic
// rules (a comprehension nested in one over the user's lists or the
// headers). On real inputs (tens of roles and groups) a rule costs tens
// to hundreds of units: microseconds.
//
// Measured on the 2-core machine of the benchmarks (BenchmarkEval), a unit
// of a comprehension costs about 50 ns, and of filter/map, which build
// lists, up to 100 ns: a rule stopped at the limit has run at most about
// 2.5 ms. cel-go charges a function call after it returns, so one call on
// a long string (a regular expression on the path, say) finishes before
// the limit can stop the rule; Envoy's max_request_headers_kb bounds those
// strings, and regexLimit bounds the regular expression.
const CostLimit = 25_000

// regexLimit bounds the program size (Go's regexp/syntax instructions) of
// a regular expression in a rule: `^/api/v[0-9]+/` is 12, an alternation
// of a few path patterns about 50; `[a-z]{1000}` is refused, since its
// size, not its length, sets the time it takes per byte matched.
const regexLimit = 100

// Size bounds for the static cost estimate: Compile assumes no input is
// larger. They are not enforced on inputs; an input beyond them only makes
// a rule costlier, and CostLimit still stops it at run time (an error: the
// caller denies).
const (
	// MaxEntries bounds each list and map of the user (groups, roles, the
	// organizations of one role, amr, scopes, claims).
	MaxEntries = 1_000
	// MaxRequestEntries bounds request.query, request.headers and route
	// (Envoy's default max_headers_count is 100).
	MaxRequestEntries = 100
	// MaxNameSize bounds, in bytes, the names: each map key (a role key,
	// a claim path, a header or parameter name, a route key) and each
	// string in a list (a group, a scope, an organization id, an amr
	// value). ZITADEL limits a role key to 200 characters.
	MaxNameSize = 256
	// MaxStringSize bounds, in bytes, every other string: the fields of
	// user and request (the path, the e-mail address), and the values of
	// user.claims, request.query, request.headers and route.
	MaxStringSize = 8 << 10
)

// newEnv is the CEL environment every rule compiles in: the four inputs,
// CEL's standard library, and the strings, sets and network (ip/cidr)
// extensions. Literals (durations, timestamps, regular expressions) are
// checked at compile time, and time functions use UTC unless a rule names
// a time zone.
func newEnv() (*cel.Env, error) {
	return cel.NewEnv(
		ext.NativeTypes(reflect.TypeFor[User](), reflect.TypeFor[Request](), ext.ParseStructTags(true)),
		cel.VariableWithDoc(varUser, cel.ObjectType(userType),
			"the signed-in user or API caller"),
		cel.VariableWithDoc(varRequest, cel.ObjectType(requestType),
			"the HTTP request"),
		cel.VariableWithDoc(varRoute, cel.MapType(cel.StringType, cel.StringType),
			"the route's context_extensions"),
		cel.VariableWithDoc(varNow, cel.TimestampType,
			"the time of the check"),
		ext.Strings(),
		ext.Sets(),
		ext.Network(),
		withRolesAdapter,
		cel.DefaultUTCTimeZone(true),
		cel.RegexProgramSizeLimit(regexLimit),
		cel.ASTValidators(
			cel.ValidateDurationLiterals(),
			cel.ValidateTimestampLiterals(),
			cel.ValidateRegexLiterals(),
			cel.ValidateHomogeneousAggregateLiterals(),
		),
	)
}

// withRolesAdapter wraps the environment's type adapter (the native types'
// registry, wrapped by ext.Network) in rolesAdapter.
func withRolesAdapter(e *cel.Env) (*cel.Env, error) {
	return cel.CustomTypeAdapter(&rolesAdapter{Adapter: e.CELTypeAdapter()})(e)
}

// rolesAdapter turns user.roles (a map[string][]string) into cel-go's
// generic native map. The registry has no fast path for that map type and
// falls back to a reflection-based map, whose iteration copies every key
// and value through reflect: half the allocations of an evaluation of
// `user.roles.exists(r, r == "admin")`.
type rolesAdapter struct{ types.Adapter }

// NativeToValue implements types.Adapter. A CEL value (a lifted
// subexpression's, hoist.go) is itself, as every adapter it wraps would
// answer, without asking them.
func (a *rolesAdapter) NativeToValue(v any) ref.Val {
	switch v := v.(type) {
	case ref.Val:
		return v
	case map[string][]string:
		return types.NewMap(a, v)
	}
	return a.Adapter.NativeToValue(v)
}

// sizeHints is the cost.Estimator that tells cel-go how large each input
// can be (the Max* bounds). Every node rooted in an input has a path
// (["user", "roles", "@keys"]); one with none, or of a fixed-size type, is
// left to cel-go.
type sizeHints struct{}

// EstimateSize implements cost.Estimator.
func (sizeHints) EstimateSize(n cost.AstNode) *cost.SizeEstimate {
	path := n.Path()
	if len(path) == 0 || n.Type() == nil {
		return nil
	}
	var max uint64
	switch n.Type().Kind() {
	case types.StringKind, types.BytesKind:
		max = MaxStringSize
		if last := path[len(path)-1]; last == "@keys" || last == "@items" {
			max = MaxNameSize
		}
	case types.ListKind, types.MapKind:
		max = MaxEntries
		if path[0] != varUser {
			max = MaxRequestEntries
		}
	default:
		return nil
	}
	sz := cost.RangedSizeEstimate(0, max)
	return &sz
}

// EstimateCallCost implements cost.Estimator: every function keeps cel-go's
// own estimate.
func (sizeHints) EstimateCallCost(string, string, *cost.AstNode, []cost.AstNode) *cost.CallEstimate {
	return nil
}
