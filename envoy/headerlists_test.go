package envoy

import (
	"slices"
	"testing"
)

// HeaderLists finds each kind of list wherever it sits, and reads it as
// the proxy would: which names it sends to Check.
func TestHeaderLists(t *testing.T) {
	for _, tc := range []struct {
		name       string
		file       string
		key        string
		sends      []string
		sendsNot   []string
		underscore bool
	}{
		{"envoy.yaml", string(Config), "allowed_headers", []string{"cookie", "authorization", "x-forwarded-user"},
			[]string{"user-agent", ":authority", "x-forwarded-for", "Cookie"}, true},
		{"Envoy JSON names, each matcher kind, disallowed_headers", `typed_config:
  allowedHeaders:
    patterns:
    - {exact: Cookie, ignoreCase: true}
    - {prefix: x-b3-}
    - {suffix: -token}
    - {contains: tenant}
    - {safeRegex: {regex: "x-team(-[a-z]+)?"}}
  disallowedHeaders: {patterns: [{exact: x-b3-flags}]}
`, "allowed_headers", []string{"cookie", "x-b3-traceid", "x-id-token", "my-tenant-id", "x-team", "x-team-red"},
			[]string{"x-b3-flags", "x-teams", "authorization"}, false},
		{"Envoy Gateway: names ignoring case; '_' refused by default", `kind: SecurityPolicy
spec:
  extAuth:
    headersToExtAuth: [Cookie, x-tenant]
`, "headersToExtAuth", []string{"cookie", "x-tenant"}, []string{"accept"}, true},
		{"Envoy Gateway with '_' allowed", `kind: ClientTrafficPolicy
spec:
  headers: {withUnderscoresAction: Allow}
---
kind: SecurityPolicy
spec:
  extAuth:
    headersToExtAuth: [cookie]
`, "headersToExtAuth", []string{"cookie"}, nil, false},
		{"Istio's mesh config, embedded as text", `kind: ConfigMap
data:
  mesh: |-
    extensionProviders:
    - name: http
      envoyExtAuthzHttp:
        includeRequestHeadersInCheck: ["Cookie", "x-b3-*", "*-token"]
`, "includeRequestHeadersInCheck", []string{"cookie", "x-b3-spanid", "x-id-token"}, []string{"accept"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lists, err := HeaderLists([]byte(tc.file))
			if err != nil || len(lists) != 1 {
				t.Fatalf("HeaderLists: %d lists, %v; want one", len(lists), err)
			}
			l := lists[0]
			if l.Key != tc.key || l.UnderscoresRefused != tc.underscore {
				t.Errorf("got key %s, underscores refused %v; want %s, %v", l.Key, l.UnderscoresRefused, tc.key, tc.underscore)
			}
			for _, n := range tc.sends {
				if !l.Sends(n) {
					t.Errorf("%s is not sent", n)
				}
			}
			for _, n := range tc.sendsNot {
				if l.Sends(n) {
					t.Errorf("%s is sent", n)
				}
			}
		})
	}
}

// Leaves: what a list doesn't get to Check; underscored names where the
// proxy refuses them don't count, and the need for every header is never
// met.
func TestLeaves(t *testing.T) {
	lists, err := HeaderLists(Config)
	if err != nil {
		t.Fatal(err)
	}
	got := lists[0].Leaves([]string{"cookie", "x_forwarded_user", "x-team", "*"})
	if want := []string{"x-team", "*"}; !slices.Equal(got, want) {
		t.Errorf("Leaves: got %v, want %v", got, want)
	}
}

// A capitalised exact name never matches (Envoy's names are lower case):
// CaseTrap names it so check-envoy can say so.
func TestCaseTrap(t *testing.T) {
	lists, err := HeaderLists([]byte("allowed_headers: {patterns: [{exact: Cookie}]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if l := lists[0]; l.Sends("cookie") || l.CaseTrap("cookie") != "exact: Cookie" || l.CaseTrap("accept") != "" {
		t.Errorf("Sends %v, CaseTrap %q", l.Sends("cookie"), l.CaseTrap("cookie"))
	}
}

// Broken lists are errors naming where they are.
func TestHeaderListsErrors(t *testing.T) {
	for _, file := range []string{
		"allowed_headers: {patterns: [{}]}\n",
		"allowed_headers: {patterns: [{safe_regex: {regex: '('}}]}\n",
		"allowed_headers: {patterns: cookie}\n",
		"headersToExtAuth: cookie\n",
		"kind: ConfigMap\ndata:\n  mesh: '{'\n",
	} {
		if _, err := HeaderLists([]byte(file)); err == nil {
			t.Errorf("HeaderLists(%q): no error", file)
		}
	}
}

// AllowHeaders adds names to envoy.yaml's list, AllowAllHeaders removes it;
// both stay valid bootstraps.
func TestAllowHeaders(t *testing.T) {
	more, err := AllowHeaders(Config, "x-team", "x-tenant")
	if err != nil {
		t.Fatal(err)
	}
	all, err := AllowAllHeaders(Config)
	if err != nil {
		t.Fatal(err)
	}
	for _, cfg := range [][]byte{more, all} {
		if _, err := Decode(cfg); err != nil {
			t.Fatal(err)
		}
	}
	if lists, _ := HeaderLists(more); len(lists) != 1 || !lists[0].Sends("x-team") || !lists[0].Sends("cookie") {
		t.Errorf("AllowHeaders: %+v", lists)
	}
	if lists, _ := HeaderLists(all); len(lists) != 0 {
		t.Errorf("AllowAllHeaders left %d lists", len(lists))
	}
	if _, err := AllowHeaders([]byte("static_resources: {}\n"), "x"); err == nil {
		t.Error("AllowHeaders on a file without the list: no error")
	}
}
