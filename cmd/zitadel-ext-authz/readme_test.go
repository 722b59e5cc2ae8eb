package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// README's links and the repository paths it names exist in a clone: no
// link outside the repository (../shared/ is not in a clone), none to a
// file that was moved or removed.
func TestREADMELinksResolve(t *testing.T) {
	root := filepath.Join("..", "..")
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	check := func(what, target string) {
		t.Helper()
		target, _, _ = strings.Cut(target, "#")
		if target == "" {
			return
		}
		if strings.HasPrefix(target, "../") || strings.HasPrefix(target, "/") {
			t.Errorf("README %s %q points outside the repository", what, target)
			return
		}
		if _, err := os.Stat(filepath.Join(root, target)); err != nil {
			t.Errorf("README %s %q: no such file or directory in the repository", what, target)
		}
	}
	links := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	n := 0
	for _, m := range links.FindAllStringSubmatch(text, -1) {
		if target := m[1]; !strings.Contains(target, "://") && !strings.HasPrefix(target, "mailto:") {
			check("link", target)
			n++
		}
	}
	// Paths in code spans that start with one of our top-level folders.
	spans := regexp.MustCompile("`((?:\\.\\./)*(?:cmd|authz|oidcflow|proto|envoy|integration|charts|bench|internal|shared)/[A-Za-z0-9_./-]*)`")
	for _, m := range spans.FindAllStringSubmatch(text, -1) {
		p := strings.TrimRight(m[1], ".")
		if strings.ContainsAny(p, "*{") {
			continue // a pattern, not a path
		}
		check("path", p)
		n++
	}
	if n < 10 {
		t.Fatalf("found only %d links and paths in README: the patterns no longer match it", n)
	}
}
