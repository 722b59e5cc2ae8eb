package config

import (
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite README's key table from the table in keys.go")

const (
	tableBegin = "<!-- config keys: generated from cmd/zitadel-ext-authz/config/keys.go; go test ./cmd/zitadel-ext-authz/config -update -->\n"
	tableEnd   = "<!-- end of config keys -->\n"
)

// README's key table is generated from the table in keys.go, so every key
// is documented and every documented key exists; no key is listed twice.
func TestREADMEDocumentsEveryKey(t *testing.T) {
	checkGenerated(t, tableBegin, tableEnd, MarkdownTable(), "key table", "keys.go")
	seen := map[string]bool{}
	for _, k := range keys {
		if seen[k.name] {
			t.Errorf("key %s listed twice", k.name)
		}
		seen[k.name] = true
	}
}

// checkGenerated compares README's text between the markers with want,
// or writes it there with -update.
func checkGenerated(t *testing.T, begin, end, want, what, source string) {
	t.Helper()
	readme, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(readme)
	a, b := strings.Index(s, begin), strings.Index(s, end)
	if a < 0 || b < a {
		t.Fatalf("README lacks the markers of the generated %s", what)
	}
	if *update {
		if err := os.WriteFile("../../../README.md", []byte(s[:a+len(begin)]+want+s[b:]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if s[a+len(begin):b] != want {
		t.Errorf("README's %s is not the table in %s; run: go test ./cmd/zitadel-ext-authz/config -update", what, source)
	}
}

// Every default is of its kind, so reading an unset key never panics, and
// an empty configuration reads every key through its kind's accessor.
func TestDefaultsMatchTheirKinds(t *testing.T) {
	for _, k := range keys {
		var ok bool
		switch k.kind {
		case kString, kDuration:
			_, ok = k.def.(string)
		case kBool:
			_, ok = k.def.(bool)
		case kList:
			_, ok = k.def.([]string)
		case kInt:
			_, ok = k.def.(int64)
		case kFloat:
			_, ok = k.def.(float64)
		}
		if !ok {
			t.Errorf("key %s: default %#v is not of its kind", k.name, k.def)
		}
	}
}

const (
	switchingBegin = "<!-- oauth2-proxy options: generated from cmd/zitadel-ext-authz/config/oauth2proxy.go; go test ./cmd/zitadel-ext-authz/config -update -->\n"
	switchingEnd   = "<!-- end of oauth2-proxy options -->\n"
)

// README's switching table lists every oauth2-proxy option as the table
// in oauth2proxy.go classifies it.
func TestREADMESwitchingTable(t *testing.T) {
	checkGenerated(t, switchingBegin, switchingEnd, SwitchingTable(), "oauth2-proxy options table", "oauth2proxy.go")
}
