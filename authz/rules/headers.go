package rules

import (
	"maps"
	"slices"
)

// HeaderReads is what the rules of a Set read of request.headers, so the
// product can say which request headers Envoy must send to Check (its
// ext_authz allowed_headers): a header a rule reads but Envoy doesn't send
// is simply absent, and the rule denies.
type HeaderReads struct {
	// Names maps each header a rule reads by a constant, lower-case name
	// (request.headers["x-team"], request.headers.x, "x" in
	// request.headers, has(request.headers.x)) to the rules that read it,
	// sorted.
	Names map[string][]string
	// AnyName lists the rules (sorted) that may read any header: they
	// index request.headers with a key computed at run time, or use it (or
	// request) as a whole value, e.g. request.headers.exists(…). With such
	// a rule Envoy must send every header.
	AnyName []string
}

// HeadersRead reports which request headers the rules of s read (s may be
// nil: none). It reads what Compile found in each checked AST (the rule's
// refs), so it costs no compilation.
func (s *Set) HeadersRead() HeaderReads {
	out := HeaderReads{Names: map[string][]string{}}
	if s == nil {
		return out
	}
	for _, name := range slices.Sorted(maps.Keys(s.rules)) {
		for _, f := range s.rules[name].refs.fields {
			switch {
			case f.v != varRequest:
			case f.field == "headers" && f.keyed:
				if !slices.Contains(out.Names[f.key], name) {
					out.Names[f.key] = append(out.Names[f.key], name)
				}
			case f.field == "headers" || f.field == "":
				// request.headers by a computed key or whole, or request
				// itself as a value.
				if !slices.Contains(out.AnyName, name) {
					out.AnyName = append(out.AnyName, name)
				}
			}
		}
	}
	return out
}
