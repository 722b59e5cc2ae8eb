package rules

import "slices"

// Compile holds every rule's estimated worst case to CostLimit with each
// input at its size bound (env.go). When every input a rule reads is
// within those bounds, the estimate bounds the evaluation, and the rule
// runs without cel-go's cost tracking (about 600 ns and 11 allocations of
// a three-clause rule); otherwise the tracked program runs, which stops
// at CostLimit. Either way no evaluation costs more than CostLimit.

// userFields and requestFields are the fields of user and request, as
// Reads names them.
var (
	userFields = []string{"user.sub", "user.email", "user.email_verified", "user.name", "user.preferred_username", "user.groups",
		"user.roles", "user.org_id", "user.amr", "user.auth_time", "user.claims", "user.via", "user.scopes"}
	requestFields = []string{"request.method", "request.scheme", "request.host", "request.path", "request.query",
		"request.headers", "request.source_address"}
)

// boundedFields are the fields of reads (a rule's Reads names; a rule
// that uses request whole reads each of its fields) whose size the bounds
// check reads.
func boundedFields(reads map[string]bool) []string {
	var out []string
	for _, f := range slices.Concat(userFields, requestFields, []string{"route"}) {
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
