package authz

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// No I/O on a request path may escape the Check's deadline: no code in
// authz/ or its subpackages starts from a fresh context.
func TestNoFreshContextOnTheRequestPath(t *testing.T) {
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(src), "\n") {
			if strings.Contains(line, "context.Background()") || strings.Contains(line, "context.TODO()") {
				t.Errorf("%s:%d: %s — pass the Check's ctx instead", path, i+1, strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
