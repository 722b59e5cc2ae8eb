package authz

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// productFiles parses the non-test Go files of dirs (relative to authz).
func productFiles(t *testing.T, dirs ...string) map[string]*ast.File {
	t.Helper()
	fset := token.NewFileSet()
	out := map[string]*ast.File{}
	for _, dir := range dirs {
		paths, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil || len(paths) == 0 {
			t.Fatalf("no Go files in %s: %v", dir, err)
		}
		for _, p := range paths {
			if strings.HasSuffix(p, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, p, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			out[filepath.ToSlash(p)] = f
		}
	}
	return out
}

// Every reason is a constant of reasons.go with an entry in the table,
// and no other file spells one as a string: a reason compared or set as a
// bare string would drift from the table (and from the metrics' labels).
func TestEveryReasonIsInTheTable(t *testing.T) {
	files := productFiles(t, ".", "apps", "../cmd/zitadel-ext-authz/telemetry")
	declared := map[string]bool{}
	ast.Inspect(files["reasons.go"], func(n ast.Node) bool {
		if vs, ok := n.(*ast.ValueSpec); ok && len(vs.Values) == 1 {
			if id, ok := vs.Type.(*ast.Ident); ok && id.Name == "Reason" {
				v, _ := strconv.Unquote(vs.Values[0].(*ast.BasicLit).Value)
				declared[v] = true
				if _, ok := reasons[Reason(v)]; !ok {
					t.Errorf("reason %q is declared but has no entry in the reasons table", v)
				}
			}
		}
		return true
	})
	if len(declared) != len(reasons) {
		t.Errorf("%d reasons declared, %d in the table", len(declared), len(reasons))
	}
	// Strings that happen to equal a reason but mean something else.
	notReasons := map[string]string{
		"signed_out": "signout.go",   // the state our sign-out sends the IdP (signedOutState)
		"panic":      "server.go",    // the log key of a recovered panic's value
		"session":    "rulecheck.go", // user.via's value for a session
	}
	for name, f := range files {
		if name == "reasons.go" {
			continue
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			v, _ := strconv.Unquote(lit.Value)
			if declared[v] && notReasons[v] != filepath.Base(name) {
				t.Errorf("%s spells the reason %q as a string: use its Reason constant", name, v)
			}
			return true
		})
	}
}

// Every denied answer is built in deny.go (or the table, reasons.go):
// error pages, set-cookie headers and local replies with a status. Pages
// a user asked for (the sign-in and signed-out pages, userinfo's JSON)
// are built where they are served.
func TestAnswersAreBuiltInDeny(t *testing.T) {
	builders := []string{"deny.go", "reasons.go"}
	statusOK := []string{"deny.go", "pages.go", "userinfo.go", "assertion.go", "resource.go"}
	for name, f := range productFiles(t, ".") {
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BasicLit:
				if n.Value == `"set-cookie"` && name != "deny.go" {
					t.Errorf("%s writes a set-cookie header: use deny.go's withCookies or withResponseCookies", name)
				}
			case *ast.CompositeLit:
				switch typ := n.Type.(type) {
				case *ast.Ident:
					if typ.Name == "page" && !slices.Contains(builders, name) {
						t.Errorf("%s builds an error page: give its reason a page in the table, or a builder in deny.go", name)
					}
					if typ.Name == "Decision" && setsField(n, "Status") && !slices.Contains(statusOK, name) {
						t.Errorf("%s builds a local reply: build it in deny.go", name)
					}
				}
			case *ast.CallExpr:
				if id := callee(n); (id == "errorPage" || id == "renderError") && name != "deny.go" {
					t.Errorf("%s calls %s: build the answer in deny.go", name, id)
				}
			}
			return true
		})
	}
}

func setsField(c *ast.CompositeLit, field string) bool {
	return slices.ContainsFunc(c.Elts, func(e ast.Expr) bool {
		kv, ok := e.(*ast.KeyValueExpr)
		if !ok {
			return false
		}
		k, ok := kv.Key.(*ast.Ident)
		return ok && k.Name == field
	})
}

func callee(c *ast.CallExpr) string {
	switch f := c.Fun.(type) {
	case *ast.Ident:
		return f.Name
	case *ast.SelectorExpr:
		return f.Sel.Name
	}
	return ""
}
