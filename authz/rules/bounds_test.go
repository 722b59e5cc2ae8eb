package rules

import (
	"strings"
	"testing"
)

// An input past any bound of a field a rule reads sends the rule to the
// cost-tracked program; fields it doesn't read don't matter.
func TestWithin(t *testing.T) {
	long := strings.Repeat("x", MaxStringSize+1)
	longName := strings.Repeat("n", MaxNameSize+1)
	tooMany := func(n int) map[string]string {
		m := make(map[string]string, n)
		for i := range n {
			m[strings.Repeat("k", i%200)+string(rune('a'+i%26))+strings.Repeat("z", i/5200)] = "v"
		}
		return m
	}
	for _, tc := range []struct {
		name   string
		reads  map[string]bool
		mutate func(*Input)
		want   bool
	}{
		{"as built", map[string]bool{"user.roles": true, "request.path": true, "user.sub": true}, func(*Input) {}, true},
		{"a long path", map[string]bool{"request.path": true}, func(in *Input) { in.Request.Path = long }, false},
		{"a long path a rule doesn't read", map[string]bool{"user.sub": true}, func(in *Input) { in.Request.Path = long }, true},
		{"the whole request", func() map[string]bool {
			s := mustCompile(t, map[string]string{"r": `[request].size() == 1`})
			return s.rules["r"].refs.reads
		}(), func(in *Input) { in.Request.Path = long }, false},
		{"too many groups", map[string]bool{"user.groups": true}, func(in *Input) { in.User.Groups = make([]string, MaxEntries+1) }, false},
		{"a long group", map[string]bool{"user.groups": true}, func(in *Input) { in.User.Groups = []string{longName} }, false},
		{"a long role", map[string]bool{"user.roles": true}, func(in *Input) { in.User.Roles = map[string][]string{longName: {}} }, false},
		{"a role granted by too many", map[string]bool{"user.roles": true}, func(in *Input) { in.User.Roles = map[string][]string{"a": make([]string, MaxEntries+1)} }, false},
		{"a long header value", map[string]bool{"request.headers": true}, func(in *Input) { in.Request.Headers = map[string]string{"x": long} }, false},
		{"too many headers", map[string]bool{"request.headers": true}, func(in *Input) { in.Request.Headers = tooMany(MaxRequestEntries + 1) }, false},
		{"a long claim", map[string]bool{"user.claims": true}, func(in *Input) { in.User.Claims = map[string]string{"c": long} }, false},
		{"a long route value", map[string]bool{"route": true}, func(in *Input) { in.Route = map[string]string{"k": long} }, false},
		{"a long e-mail", map[string]bool{"user.email": true}, func(in *Input) { in.User.Email = long }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := testInput()
			tc.mutate(in)
			if got := within(in, boundedFields(tc.reads)); got != tc.want {
				t.Errorf("within: got %v, want %v", got, tc.want)
			}
		})
	}
}

// Every input field has a bound (or none to check): a field added to
// User or Request without one here would run untracked.
func TestEveryInputFieldHasABound(t *testing.T) {
	for _, f := range inputFields {
		if !within(testInput(), []string{f}) {
			t.Errorf("within doesn't know %s: add its bound (or none) to within's switch", f)
		}
	}
}
