package rules

import (
	"reflect"
	"slices"
	"strings"

	"cel.dev/cel-go/cel"
)

// Compile holds every rule's estimated worst case to CostLimit with each
// input at its size bound (env.go). When every input a rule reads is
// within those bounds, the estimate bounds the evaluation, and the rule
// runs without cel-go's cost tracking (about 600 ns and 11 allocations of
// a three-clause rule), lifted (hoist.go) when the input has a memo;
// otherwise the tracked program runs, which stops at CostLimit. Either
// way no evaluation costs more than CostLimit.

// program is the program of r for in.
func (r *rule) program(in *Input) cel.Program {
	if !within(in, r.otherSized) {
		return r.prog
	}
	if m := r.set.memoFor(in); m != nil && m.within {
		if r.lifted != nil {
			return r.lifted
		}
		return r.bounded
	}
	if !within(in, r.userSized) {
		return r.prog
	}
	return r.bounded
}

// splitSized splits fields (boundedFields) into those of user and the
// others.
func splitSized(fields []string) (user, other []string) {
	for _, f := range fields {
		if strings.HasPrefix(f, varUser+".") {
			user = append(user, f)
		} else {
			other = append(other, f)
		}
	}
	return user, other
}

// inputFields are the fields of user and request and route, as Reads
// names them, from the types' cel tags.
var inputFields = slices.Concat(qualified(varUser, celFields(reflect.TypeFor[User]())),
	qualified(varRequest, celFields(reflect.TypeFor[Request]())), []string{varRoute})

func qualified(v string, fields []string) []string {
	out := make([]string, len(fields))
	for i, f := range fields {
		out[i] = fieldName(v, f)
	}
	return out
}

// boundedFields are the fields of reads (a rule's Reads names; a rule
// that uses request whole reads each of its fields) whose size the bounds
// check reads.
func boundedFields(reads map[string]bool) []string {
	var out []string
	for _, f := range inputFields {
		if reads[f] {
			out = append(out, f)
		}
	}
	return out
}

// within reports whether each of fields of in is within its size bound.
func within(in *Input, fields []string) bool {
	u, r := in.User, in.Request
	for _, f := range fields {
		ok := true
		switch f {
		case "user.sub":
			ok = u == nil || len(u.Sub) <= MaxStringSize
		case "user.email":
			ok = u == nil || len(u.Email) <= MaxStringSize
		case "user.name":
			ok = u == nil || len(u.Name) <= MaxStringSize
		case "user.preferred_username":
			ok = u == nil || len(u.PreferredUsername) <= MaxStringSize
		case "user.org_id":
			ok = u == nil || len(u.OrgID) <= MaxStringSize
		case "user.via":
			ok = u == nil || len(u.Via) <= MaxStringSize
		case "user.groups":
			ok = u == nil || namesWithin(u.Groups, MaxEntries)
		case "user.amr":
			ok = u == nil || namesWithin(u.AMR, MaxEntries)
		case "user.scopes":
			ok = u == nil || namesWithin(u.Scopes, MaxEntries)
		case "user.roles":
			ok = u == nil || rolesWithin(u.Roles)
		case "user.claims":
			ok = u == nil || mapWithin(u.Claims, MaxEntries)
		case "request.method":
			ok = r == nil || len(r.Method) <= MaxStringSize
		case "request.scheme":
			ok = r == nil || len(r.Scheme) <= MaxStringSize
		case "request.host":
			ok = r == nil || len(r.Host) <= MaxStringSize
		case "request.path":
			ok = r == nil || len(r.Path) <= MaxStringSize
		case "request.source_address":
			ok = r == nil || len(r.SourceAddress) <= MaxStringSize
		case "request.query":
			ok = r == nil || mapWithin(r.Query, MaxRequestEntries)
		case "request.headers":
			ok = r == nil || mapWithin(r.Headers, MaxRequestEntries)
		case "route":
			ok = mapWithin(in.Route, MaxRequestEntries)
		case "user.email_verified", "user.auth_time":
			// no size
		default:
			// A field this switch doesn't know (one added to User or
			// Request later) has no known bound: the tracked program runs.
			ok = false
		}
		if !ok {
			return false
		}
	}
	return true
}

// namesWithin: at most max entries, each at most MaxNameSize bytes.
func namesWithin(l []string, max int) bool {
	if len(l) > max {
		return false
	}
	for _, s := range l {
		if len(s) > MaxNameSize {
			return false
		}
	}
	return true
}

// mapWithin: at most max entries, names at most MaxNameSize bytes and
// values at most MaxStringSize.
func mapWithin(m map[string]string, max int) bool {
	if len(m) > max {
		return false
	}
	for k, v := range m {
		if len(k) > MaxNameSize || len(v) > MaxStringSize {
			return false
		}
	}
	return true
}

// rolesWithin: user.roles within its bounds, and each role's
// organizations within theirs.
func rolesWithin(m map[string][]string) bool {
	if len(m) > MaxEntries {
		return false
	}
	for k, orgs := range m {
		if len(k) > MaxNameSize || !namesWithin(orgs, MaxEntries) {
			return false
		}
	}
	return true
}
