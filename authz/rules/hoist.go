package rules

import (
	"fmt"
	"slices"
	"strconv"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
)

// A rule's subexpressions that read user and nothing else (no request,
// route, now or comprehension variable) have the same value in every
// evaluation for one user: "/users/" + user.sub + "/", "admin" in
// user.roles, user.groups. Compile lifts each largest such subexpression
// out of the rule into a program of its own, and the rule reads its value
// as a variable (@u0, @u1, …, numbered across the Set); a UserMemo works
// each out once, on first use, and keeps it. CEL is side-effect free and
// its errors are values (an error left of || is overridden by a true
// right of it, wherever the error came from), so the rule means the same:
// a lifted subexpression that fails is an error value where the rule
// reads it, as it was in place. Only evaluations with a UserMemo use the
// lifted rule, and only within the size bounds (bounds.go), where no
// part of a rule can exceed CostLimit.

// memoVarPrefix starts the name of a lifted subexpression's variable;
// no rule can name it (a CEL identifier never starts with @).
const memoVarPrefix = "@u"

// lifted is one lifted subexpression: its expression id in the checked
// rule, its variable and its type.
type lifted struct {
	id   int64
	name string
	t    *types.Type
}

// memoVar is the name of the variable of the Set's lifted subexpression i.
func memoVar(i int) string { return memoVarPrefix + strconv.Itoa(i) }

// memoIndex is i for the name memoVar(i) (at most nine digits).
func memoIndex(name string) (int, bool) {
	digits := len(name) - len(memoVarPrefix)
	if digits < 1 || digits > 9 || name[:len(memoVarPrefix)] != memoVarPrefix {
		return 0, false
	}
	i := 0
	for _, c := range name[len(memoVarPrefix):] {
		if c < '0' || c > '9' {
			return 0, false
		}
		i = i*10 + int(c-'0')
	}
	return i, true
}

// liftable finds the largest subexpressions of a that read user and
// nothing else, outside any comprehension whose variable is named user,
// numbered from first in the order of a walk from the root. One whose
// value is a type (type(user.sub)) stays: the checker reads a variable
// of type type as a type's name.
func liftable(a *ast.AST, first int) []lifted {
	var out []lifted
	var visit func(e ast.Expr, scopes []string)
	visit = func(e ast.Expr, scopes []string) {
		if e.Kind() != ast.IdentKind && !slices.Contains(scopes, varUser) && userOnly(e) {
			if t := a.GetType(e.ID()); t != nil && t.Kind() != types.ErrorKind && t.Kind() != types.TypeKind {
				out = append(out, lifted{id: e.ID(), name: memoVar(first + len(out)), t: t})
				return
			}
		}
		forChildren(e, scopes, visit)
	}
	visit(a.Expr(), nil)
	return out
}

// userOnly reports whether the only variable e reads (free in e) is user.
func userOnly(e ast.Expr) bool {
	free := map[string]bool{}
	var collect func(e ast.Expr, bound []string)
	collect = func(e ast.Expr, bound []string) {
		if e.Kind() == ast.IdentKind && !slices.Contains(bound, e.AsIdent()) {
			free[e.AsIdent()] = true
		}
		forChildren(e, bound, collect)
	}
	collect(e, nil)
	return len(free) == 1 && free[varUser]
}

// forChildren calls f on each direct subexpression of e with the
// variables in scope there (scopes, plus a comprehension's own): the one
// enumeration of a CEL node's parts, for the lifting and for findRefs.
func forChildren(e ast.Expr, scopes []string, f func(ast.Expr, []string)) {
	switch e.Kind() {
	case ast.SelectKind:
		f(e.AsSelect().Operand(), scopes)
	case ast.CallKind:
		c := e.AsCall()
		if c.IsMemberFunction() {
			f(c.Target(), scopes)
		}
		for _, arg := range c.Args() {
			f(arg, scopes)
		}
	case ast.ListKind:
		for _, el := range e.AsList().Elements() {
			f(el, scopes)
		}
	case ast.MapKind:
		for _, en := range e.AsMap().Entries() {
			f(en.AsMapEntry().Key(), scopes)
			f(en.AsMapEntry().Value(), scopes)
		}
	case ast.StructKind:
		for _, fl := range e.AsStruct().Fields() {
			f(fl.AsStructField().Value(), scopes)
		}
	case ast.ComprehensionKind:
		c := e.AsComprehension()
		f(c.IterRange(), scopes)
		f(c.AccuInit(), scopes)
		inner := append(slices.Clip(scopes), c.IterVar(), c.AccuVar())
		if c.HasIterVar2() {
			inner = append(inner, c.IterVar2())
		}
		f(c.LoopCondition(), inner)
		f(c.LoopStep(), inner)
		f(c.Result(), inner)
	}
}

// lift is the cel.ASTOptimizer that replaces each subexpression of subs
// with its variable (declared in the optimizer's environment).
type lift struct{ subs []lifted }

// Optimize implements cel.ASTOptimizer.
func (l lift) Optimize(ctx *cel.OptimizerContext, a *ast.AST) *ast.AST {
	at := exprsByID(a)
	for _, s := range l.subs {
		ctx.UpdateExpr(at[s.id], ctx.NewIdent(s.name))
	}
	return a
}

// extract is the cel.ASTOptimizer whose result is the subexpression id
// alone.
type extract struct{ id int64 }

// Optimize implements cel.ASTOptimizer.
func (x extract) Optimize(ctx *cel.OptimizerContext, a *ast.AST) *ast.AST {
	return ctx.NewAST(exprsByID(a)[x.id])
}

// exprsByID indexes the expressions of a by id.
func exprsByID(a *ast.AST) map[int64]ast.Expr {
	at := map[int64]ast.Expr{}
	for _, e := range ast.MatchDescendants(ast.NavigateAST(a), func(ast.NavigableExpr) bool { return true }) {
		at[e.ID()] = e
	}
	return at
}

// liftRule lifts the user-only subexpressions of checked (numbered from
// first): the lifted rule's program, and one program per subexpression
// (planned in env). No subexpression to lift: nil.
func liftRule(env *cel.Env, checked *cel.Ast, first int) (cel.Program, []cel.Program, error) {
	subs := liftable(checked.NativeRep(), first)
	if len(subs) == 0 {
		return nil, nil, nil
	}
	progs := make([]cel.Program, len(subs))
	for i, s := range subs {
		a, err := optimize(env, checked, extract{s.id})
		if err != nil {
			return nil, nil, fmt.Errorf("lift %s: %w", s.name, err)
		}
		if progs[i], err = env.Program(a, cel.EvalOptions(cel.OptOptimize)); err != nil {
			return nil, nil, fmt.Errorf("lift %s: %w", s.name, err)
		}
	}
	lenv, lifted, err := liftAST(env, checked, subs)
	if err != nil {
		return nil, nil, fmt.Errorf("lift: %w", err)
	}
	p, err := lenv.Program(lifted, cel.EvalOptions(cel.OptOptimize))
	return p, progs, err
}

// liftAST is checked with subs lifted, and env with their variables.
func liftAST(env *cel.Env, checked *cel.Ast, subs []lifted) (*cel.Env, *cel.Ast, error) {
	vars := make([]cel.EnvOption, len(subs))
	for i, s := range subs {
		vars[i] = cel.Variable(s.name, s.t)
	}
	lenv, err := env.Extend(vars...)
	if err != nil {
		return nil, nil, err
	}
	a, err := optimize(lenv, checked, lift{subs})
	return lenv, a, err
}

// optimize is checked as o rewrites it (checked again).
func optimize(env *cel.Env, checked *cel.Ast, o cel.ASTOptimizer) (*cel.Ast, error) {
	opt, err := cel.NewStaticOptimizer(o)
	if err != nil {
		return nil, err
	}
	a, iss := opt.Optimize(env, checked)
	if iss.Err() != nil {
		return nil, iss.Err()
	}
	return a, nil
}
