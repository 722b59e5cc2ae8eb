package rules

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// HeadersRead names every header a rule reads by a constant name, in each
// way CEL can spell it, and names the rules that may read any header.
func TestHeadersRead(t *testing.T) {
	for _, tc := range []struct {
		name string
		defs map[string]string
		want HeaderReads
	}{
		{"no rules", nil, HeaderReads{Names: map[string][]string{}}},
		{"no headers", map[string]string{"a": `request.method == "GET" && "admin" in user.roles`}, HeaderReads{Names: map[string][]string{}}},
		{"index, selection, in and has", map[string]string{
			"a": `request.headers["x-team"] == "blue"`,
			"b": `request.headers.x_flag == "1" || "x-team" in request.headers`,
			"c": `has(request.headers.origin)`,
		}, HeaderReads{Names: map[string][]string{"x-team": {"a", "b"}, "x_flag": {"b"}, "origin": {"c"}}}},
		{"a key computed at run time", map[string]string{
			"a": `request.headers[request.query["h"]] == "1"`,
			"b": `request.headers["x-team"] == "blue"`,
		}, HeaderReads{Names: map[string][]string{"x-team": {"b"}}, AnyName: []string{"a"}}},
		{"the map as a whole", map[string]string{
			"a": `request.headers.exists(k, k.startsWith("x-"))`,
			"b": `size(request.headers) < 50`,
		}, HeaderReads{Names: map[string][]string{}, AnyName: []string{"a", "b"}}},
		{"a comprehension variable named request", map[string]string{
			"a": `["x"].exists(request, request == "x")`,
		}, HeaderReads{Names: map[string][]string{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := mustCompile(t, tc.defs).HeadersRead()
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("HeadersRead (-want +got):\n%s", diff)
			}
		})
	}
	if got := (*Set)(nil).HeadersRead(); len(got.Names) != 0 || got.AnyName != nil {
		t.Errorf("nil Set: %+v", got)
	}
}
