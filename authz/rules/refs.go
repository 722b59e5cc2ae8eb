package rules

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"sort"
	"strings"

	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
)

// Messages of the compile errors findRefs reports.
const (
	msgClaimsKey = "user.claims needs a constant key, so the session knows which claims to keep"
	msgBareUser  = "user must be read field by field (user.sub, user.claims[\"x\"], …), so the session knows which claims to keep"
	msgHeaderKey = "request.headers has lower-case names: %q never matches"
)

// refs is what one rule reads, found in its checked AST.
type refs struct {
	reads      map[string]bool // Set.Reads' names: "user.roles", "user", "route", …
	fields     []fieldRef      // Explain's inputs, in order of first use in the source
	claimPaths []string        // constant keys of user.claims, sorted
	problems   []refProblem
}

// fieldRef is one input a rule reads: a field of user or request, route or
// now, or one constant key of a map among them.
type fieldRef struct {
	name   string // "user.roles", `request.headers["x-team"]`, "route", "now"
	v      string // the input variable: user, request, route, now
	field  string // the CEL field of user or request; "" for route and now
	key    string // the constant map key, when keyed
	keyed  bool
	offset int32 // where in the source the rule first reads it
}

// refProblem is a compile error found in the AST, at expression id.
type refProblem struct {
	id  int64
	msg string
}

// findRefs walks a checked rule. A comprehension variable may shadow an
// input's name (`[1].exists(user, user > 0)`), so the walk keeps the
// comprehension scopes and ignores shadowed names.
func findRefs(a *ast.AST) refs {
	w := &walker{ast: a, info: a.SourceInfo(), seen: map[string]int{}, reads: map[string]bool{}, claims: map[string]bool{}}
	w.walk(a.Expr())
	r := refs{reads: w.reads, fields: w.fields, problems: w.problems}
	for p := range w.claims {
		r.claimPaths = append(r.claimPaths, p)
	}
	sort.Strings(r.claimPaths)
	sort.SliceStable(r.fields, func(i, j int) bool { return r.fields[i].offset < r.fields[j].offset })
	return r
}

// walker is findRefs' state: one rule's AST and what was found so far.
type walker struct {
	ast      *ast.AST
	info     *ast.SourceInfo
	scopes   []string // comprehension variables in scope
	seen     map[string]int
	fields   []fieldRef
	reads    map[string]bool
	claims   map[string]bool
	problems []refProblem
}

// walk visits e and its subexpressions. The patterns that read a field
// or a constant map key (selection, call) stop the descent, so an input
// reached here alone is used as a whole value (bare).
func (w *walker) walk(e ast.Expr) {
	switch e.Kind() {
	case ast.IdentKind:
		if v, ok := w.input(e); ok {
			w.bare(e, v)
		}
	case ast.SelectKind:
		w.selection(e)
	case ast.CallKind:
		w.call(e)
	default:
		// Comprehensions, lists, maps and structs: their parts, with a
		// comprehension's variables in scope (forChildren, as the lifting
		// walks them).
		forChildren(e, w.scopes, func(c ast.Expr, scopes []string) {
			outer := w.scopes
			w.scopes = scopes
			w.walk(c)
			w.scopes = outer
		})
	}
}

// input reports whether e is an input variable (not a comprehension
// variable of the same name), and which.
func (w *walker) input(e ast.Expr) (string, bool) {
	if e.Kind() != ast.IdentKind {
		return "", false
	}
	switch name := e.AsIdent(); name {
	case varUser, varRequest, varRoute, varNow:
		if slices.Contains(w.scopes, name) {
			return "", false
		}
		return name, true
	}
	return "", false
}

// bare records an input used as a whole value.
func (w *walker) bare(e ast.Expr, v string) {
	switch v {
	case varUser:
		w.problems = append(w.problems, refProblem{e.ID(), msgBareUser})
	case varRequest:
		for _, f := range celFields(reflect.TypeFor[Request]()) {
			w.reads[fieldName(varRequest, f)] = true
		}
		w.read(e, fieldRef{name: varRequest, v: varRequest})
	default:
		w.read(e, fieldRef{name: v, v: v})
	}
}

// selection handles e.f: a field of user or request, a constant key of a
// map input (route.org, request.headers.x), or anything else.
func (w *walker) selection(e ast.Expr) {
	sel := e.AsSelect()
	op := sel.Operand()
	if v, ok := w.input(op); ok && (v == varUser || v == varRequest) {
		if v == varUser && sel.FieldName() == "claims" {
			// Reached only when no constant key follows (see call, mapInput).
			w.problems = append(w.problems, refProblem{e.ID(), msgClaimsKey})
			return
		}
		w.read(e, fieldRef{name: fieldName(v, sel.FieldName()), v: v, field: sel.FieldName()})
		return
	}
	if m, ok := w.mapInput(op); ok {
		w.readKey(op, m, sel.FieldName())
		return
	}
	w.walk(op)
}

// call handles m["k"] and "k" in m on a map input with a constant key,
// and walks every other call.
func (w *walker) call(e ast.Expr) {
	c := e.AsCall()
	args := c.Args()
	switch c.FunctionName() {
	case operators.Index:
		if m, ok := w.mapInput(args[0]); ok {
			if key, ok := stringLiteral(args[1]); ok {
				w.readKey(args[0], m, key)
				return
			}
		}
	case operators.In:
		if m, ok := w.mapInput(args[1]); ok {
			if key, ok := stringLiteral(args[0]); ok {
				w.readKey(args[1], m, key)
				return
			}
		}
	}
	if c.IsMemberFunction() {
		w.walk(c.Target())
	}
	for _, a := range args {
		w.walk(a)
	}
}

// mapInput reports whether e is a map-typed input read as a whole:
// route, or a map field of user or request (user.claims, request.headers).
func (w *walker) mapInput(e ast.Expr) (fieldRef, bool) {
	if v, ok := w.input(e); ok && v == varRoute {
		return fieldRef{v: v}, true
	}
	if e.Kind() != ast.SelectKind || e.AsSelect().IsTestOnly() {
		return fieldRef{}, false
	}
	sel := e.AsSelect()
	v, ok := w.input(sel.Operand())
	if !ok || (v != varUser && v != varRequest) {
		return fieldRef{}, false
	}
	if t := w.ast.GetType(e.ID()); t == nil || t.Kind() != types.MapKind {
		return fieldRef{}, false
	}
	return fieldRef{v: v, field: sel.FieldName()}, true
}

// readKey records a read of map input m (at expression at) by the
// constant key.
func (w *walker) readKey(at ast.Expr, m fieldRef, key string) {
	m.key, m.keyed = key, true
	m.name = fieldName(m.v, m.field) + quoteKey(key)
	if m.v == varUser && m.field == "claims" {
		w.claims[key] = true
	}
	if m.v == varRequest && m.field == "headers" && key != strings.ToLower(key) {
		w.problems = append(w.problems, refProblem{at.ID(), fmt.Sprintf(msgHeaderKey, key)})
	}
	w.read(at, m)
}

// read records f, read by expression e.
func (w *walker) read(e ast.Expr, f fieldRef) {
	w.reads[f.v] = true
	w.reads[fieldName(f.v, f.field)] = true
	f.offset = math.MaxInt32
	if o, ok := w.info.GetOffsetRange(e.ID()); ok {
		f.offset = o.Start
	}
	if i, ok := w.seen[f.name]; ok {
		w.fields[i].offset = min(w.fields[i].offset, f.offset)
		return
	}
	w.seen[f.name] = len(w.fields)
	w.fields = append(w.fields, f)
}

// stringLiteral is e's value when e is a string literal.
func stringLiteral(e ast.Expr) (string, bool) {
	if e.Kind() != ast.LiteralKind {
		return "", false
	}
	s, ok := e.AsLiteral().(types.String)
	return string(s), ok
}

// celFields lists the CEL names (cel tags) of struct type t's fields, in
// declaration order.
func celFields(t reflect.Type) []string {
	names := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		if tag := t.Field(i).Tag.Get("cel"); tag != "" {
			names = append(names, tag)
		}
	}
	return names
}
