package config

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/rules"
)

// buildRules: rules (named CEL rules, compiled here, at load and on
// reload), and allow_if and deny_if, the rules of routes that name none.
// An apps entry's rules add to the top level's. The session keeps the
// claims the rules read (oidcflow.Config.KeepClaims).
func (r *resolver) buildRules(c *Config) {
	defs := map[string]string{}
	if r.parent != nil {
		r.parent.ruleTable(defs, r.parent.raw)
		r.ruleTable(defs, func(name string) (any, bool) { v, ok := r.app[name]; return v, ok })
	} else {
		r.ruleTable(defs, r.raw)
	}
	set, err := rules.Compile(defs)
	if err != nil {
		r.fail("rules", "%v", err)
		return
	}
	c.Authz.Rules = set
	c.Authz.AllowIf, c.Authz.DenyIf = r.ruleList(set, "allow_if"), r.ruleList(set, "deny_if")
	c.OIDC.KeepClaims = set.ClaimPaths()
}

// ruleTable adds the rules table raw finds (a table, or a JSON object in
// the environment and flags) to defs; rule names are lower case (the
// configuration reader lower-cases table keys).
func (r *resolver) ruleTable(defs map[string]string, raw func(string) (any, bool)) {
	def("rules", kList)
	v, ok := raw("rules")
	if !ok {
		return
	}
	if s, isString := v.(string); isString {
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			r.fail("rules", "want a table of name = 'CEL expression' (in the environment or a flag: a JSON object); %v", err)
			return
		}
		v = m
	}
	table, isTable := toTable(v) // names lower case
	if !isTable {
		r.fail("rules", "want a table of name = 'CEL expression', such as [rules] admins = '\"admin\" in user.roles'")
		return
	}
	for _, name := range slices.Sorted(maps.Keys(table)) {
		expr, isString := table[name].(string)
		if !isString {
			r.fail("rules", "rule %s: want a CEL expression (a string)", name)
			return
		}
		defs[name] = expr
	}
}

// ruleList reads allow_if or deny_if: names of rules set defines.
func (r *resolver) ruleList(set *rules.Set, name string) []string {
	names := r.list(name)
	for i, n := range names {
		names[i] = strings.ToLower(n)
		if !set.Has(names[i]) {
			r.fail(name, "%s", unknownRule(set, n))
			return nil
		}
	}
	return names
}

// unknownRule says that no rule is called name, and which are.
func unknownRule(set *rules.Set, name string) string {
	if len(set.Names()) == 0 {
		return fmt.Sprintf("rule %q is not defined: no rules are (define it under [rules])", name)
	}
	return fmt.Sprintf("rule %q is not defined under [rules] (defined: %s)", name, strings.Join(set.Names(), ", "))
}
