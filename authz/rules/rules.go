package rules

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/interpreter"
)

// ErrUnknownRule is the error of Eval and Explain for a name that is no
// rule of the Set.
var ErrUnknownRule = errors.New("unknown rule")

// ErrCostLimit is the error (wrapped) of an evaluation stopped at
// CostLimit.
var ErrCostLimit = errors.New("cost limit exceeded")

// validName is the shape of a rule name: a CEL identifier, so a name reads
// the same in the config, the logs and a route's allow_if list.
var validName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ValidName reports whether name may name a rule ([A-Za-z_][A-Za-z0-9_]*):
// Compile's test, which a route's allow_if and deny_if are held to too.
func ValidName(name string) bool { return validName.MatchString(name) }

// Set is a compiled set of named rules; safe for concurrent use.
type Set struct {
	rules      map[string]*rule
	names      []string
	claimPaths []string
	reads      map[string]bool
	// lifts are the programs of the rules' lifted subexpressions, by
	// variable number (hoist.go); userSized the fields of user the rules
	// read that have a size bound.
	lifts     []cel.Program
	userSized []string
}

// rule is one compiled rule: its program, planned once by Compile, and
// what it reads.
type rule struct {
	name, source string
	set          *Set
	prog         cel.Program // with cel-go's cost tracking, stopped at CostLimit
	// bounded is the program without cost tracking, for inputs whose
	// sized fields are within the bounds (bounds.go); lifted is bounded
	// with its subexpressions of user lifted out (hoist.go; nil: none),
	// for an input with a memo.
	bounded, lifted cel.Program
	// The fields the rule reads that have a size bound: of user, and of
	// request and route.
	userSized, otherSized []string
	refs                  refs
}

// Compile compiles every rule of defs (name → CEL expression). The error
// names every bad rule: "rule owner_or_admin: line 1, column 5: undeclared
// reference to 'usr'" (one line per problem, errors.Join). Names must match
// [A-Za-z_][A-Za-z0-9_]* (error otherwise). An empty or nil defs is an
// empty Set (not an error).
//
// A rule is refused when it does not parse or type-check (an unknown
// variable, an unknown field of user or request, a wrong argument), when
// it is not of type bool, when it reads user.claims other than by a
// constant key, and when its estimated worst-case cost exceeds CostLimit.
func Compile(defs map[string]string) (*Set, error) {
	s := &Set{rules: make(map[string]*rule, len(defs)), reads: map[string]bool{}}
	if len(defs) == 0 {
		return s, nil
	}
	env, err := newEnv()
	if err != nil {
		return nil, fmt.Errorf("rules environment: %w", err)
	}
	names := make([]string, 0, len(defs))
	for name := range defs {
		names = append(names, name)
	}
	sort.Strings(names)

	var errs []error
	claims := map[string]bool{}
	for _, name := range names {
		r, lifts, problems := compileRule(env, name, defs[name], len(s.lifts))
		if len(problems) > 0 {
			errs = append(errs, problems...)
			continue
		}
		r.set = s
		s.rules[name] = r
		s.lifts = append(s.lifts, lifts...)
		for _, p := range r.refs.claimPaths {
			claims[p] = true
		}
		for f := range r.refs.reads {
			s.reads[f] = true
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	s.names = names
	s.userSized, _ = splitSized(boundedFields(s.reads))
	for p := range claims {
		s.claimPaths = append(s.claimPaths, p)
	}
	sort.Strings(s.claimPaths)
	return s, nil
}

// compileRule parses, checks, vets, optimizes (existsToIn) and plans one
// rule, lifting its subexpressions of user (numbered from first; their
// programs are lifts); each problem is an error naming the rule (and where
// the source has one, line and column). What a rule reads comes from the
// AST as written.
func compileRule(env *cel.Env, name, src string, first int) (r *rule, lifts []cel.Program, problems []error) {
	if !ValidName(name) {
		return nil, nil, []error{fmt.Errorf("rule %q: name must match [A-Za-z_][A-Za-z0-9_]*", name)}
	}
	checked, found, problems := checkRule(env, name, src)
	if len(problems) > 0 {
		return nil, nil, problems
	}
	fail := func(step string, err error) (*rule, []cel.Program, []error) {
		return nil, nil, []error{fmt.Errorf("rule %s: %s: %w", name, step, err)}
	}
	opt, err := cel.NewStaticOptimizer(existsToIn{})
	if err != nil {
		return fail("optimize", err)
	}
	checked, iss := opt.Optimize(env, checked)
	if iss.Err() != nil {
		return fail("optimize", iss.Err())
	}
	est, err := env.EstimateCost(checked, sizeHints{})
	if err != nil {
		return fail("estimate cost", err)
	}
	if est.Max > CostLimit {
		return nil, nil, []error{fmt.Errorf("rule %s: estimated worst-case cost %d exceeds the limit %d "+
			"(with every input at its documented size bound)", name, est.Max, CostLimit)}
	}
	r = &rule{name: name, source: src, refs: found}
	r.userSized, r.otherSized = splitSized(boundedFields(found.reads))
	if r.prog, err = env.Program(checked, cel.CostLimit(CostLimit), cel.EvalOptions(cel.OptOptimize)); err != nil {
		return fail("plan", err)
	}
	if r.bounded, err = env.Program(checked, cel.EvalOptions(cel.OptOptimize)); err != nil {
		return fail("plan", err)
	}
	if r.lifted, lifts, err = liftRule(env, checked, first); err != nil {
		return fail("plan", err)
	}
	return r, lifts, nil
}

// checkRule parses, checks and vets one rule: the checked AST and what
// the rule reads, or its problems.
func checkRule(env *cel.Env, name, src string) (*cel.Ast, refs, []error) {
	checked, iss := env.Compile(src)
	if iss.Err() != nil {
		var errs []error
		for _, e := range iss.Errors() {
			errs = append(errs, problem(name, e.Location, e.Message))
		}
		return nil, refs{}, errs
	}
	native := checked.NativeRep()
	info := native.SourceInfo()
	root := native.Expr()
	if t := checked.OutputType(); !t.IsExactType(types.BoolType) {
		return nil, refs{}, []error{problem(name, info.GetStartLocation(root.ID()),
			fmt.Sprintf("a rule must be of type bool, not %s", t))}
	}
	found := findRefs(native)
	if len(found.problems) > 0 {
		var errs []error
		for _, p := range found.problems {
			errs = append(errs, problem(name, info.GetStartLocation(p.id), p.msg))
		}
		return nil, refs{}, errs
	}
	return checked, found, nil
}

// problem is one compile error of rule name at loc.
func problem(name string, loc common.Location, msg string) error {
	if loc == nil || loc.Line() < 1 {
		return fmt.Errorf("rule %s: %s", name, msg)
	}
	return fmt.Errorf("rule %s: line %d, column %d: %s", name, loc.Line(), loc.Column()+1, msg)
}

// Has reports whether name is a rule of s. (s may be nil: false.)
func (s *Set) Has(name string) bool {
	return s.rule(name) != nil
}

// Names lists the rule names, sorted.
func (s *Set) Names() []string {
	if s == nil {
		return nil
	}
	return slices.Clone(s.names)
}

// Source is the rule's CEL text ("" when unknown).
func (s *Set) Source(name string) string {
	if r := s.rule(name); r != nil {
		return r.source
	}
	return ""
}

// Eval evaluates rule name on in. An unknown name, a run-time error or a
// cost-limit overrun is an error (the caller denies).
//
// A missing map key is a run-time error: a rule tests presence with
// `"x" in request.headers` or `has(request.query.x)`.
func (s *Set) Eval(name string, in *Input) (bool, error) {
	r := s.rule(name)
	if r == nil {
		return false, fmt.Errorf("rule %s: %w", name, ErrUnknownRule)
	}
	return r.eval(in)
}

// eval runs r's program on in.
func (r *rule) eval(in *Input) (bool, error) {
	if in == nil {
		return false, fmt.Errorf("rule %s: no input", r.name)
	}
	out, _, err := r.program(in).Eval((*activation)(in))
	if err != nil {
		if c, ok := errors.AsType[interpreter.EvalCancelledError](err); ok && c.Cause == interpreter.CostLimitExceeded {
			return false, fmt.Errorf("rule %s: %w (%d)", r.name, ErrCostLimit, CostLimit)
		}
		return false, fmt.Errorf("rule %s: %w", r.name, err)
	}
	b, ok := out.(types.Bool)
	if !ok {
		// Compile admits bool rules only; a dyn value is the one way here.
		return false, fmt.Errorf("rule %s: result is %s, not bool", r.name, out.Type())
	}
	return bool(b), nil
}

// ClaimPaths lists the claim paths the rules read with a constant key,
// user.claims["a.b"] or user.claims.x (sorted, deduplicated): the session
// keeps exactly these claims. A rule that indexes user.claims with a
// non-constant key is a compile error naming the rule ("user.claims needs
// a constant key, so the session knows which claims to keep").
// `"a.b" in user.claims` and has(user.claims.x) count as reads of their key.
func (s *Set) ClaimPaths() []string {
	if s == nil {
		return nil
	}
	return slices.Clone(s.claimPaths)
}

// Reads reports whether any rule of s reads the field ("request.query",
// "request.headers", "user.claims", "user.roles", …): callers build only
// the inputs some rule reads. "route" and "now" name those inputs; "user"
// and "request" report whether any field of theirs is read.
func (s *Set) Reads(field string) bool {
	if s == nil {
		return false
	}
	return s.reads[field]
}

// rule is the rule name of s, or nil.
func (s *Set) rule(name string) *rule {
	if s == nil {
		return nil
	}
	return s.rules[name]
}

// fieldName is how Explain and Reads name a field of input v.
func fieldName(v, field string) string {
	if field == "" {
		return v
	}
	return v + "." + field
}

// quoteKey renders a constant map key as a rule indexes it: ["a.b"].
func quoteKey(key string) string {
	return "[" + strconv.Quote(key) + "]"
}
