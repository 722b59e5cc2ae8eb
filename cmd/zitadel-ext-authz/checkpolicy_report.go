package main

// check-policy's report: what it found, printed for people (--explain)
// or as one JSON object (--json).

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz"
)

// policyReport is what check-policy prints (--json: as is).
type policyReport struct {
	Request   policyRequest     `json:"request"`
	App       string            `json:"app"` // "" when no app takes the request
	Why       string            `json:"why"`
	Route     map[string]string `json:"route"` // the route's context_extensions
	User      policyUser        `json:"user"`
	Endpoint  string            `json:"endpoint,omitempty"` // one of ours: Check answers it itself
	RuleLists policyRuleLists   `json:"rule_lists"`
	Rules     []policyRule      `json:"rules"`
	Decision  policyDecision    `json:"decision"`
	Note      string            `json:"note,omitempty"`
}

type policyRequest struct {
	Method string `json:"method"`
	URL    string `json:"url"`
	API    bool   `json:"api"` // accept: application/json, not text/html
	Source string `json:"source"`
}

type policyUser struct {
	Sub      string `json:"sub,omitempty"`
	Via      string `json:"via,omitempty"` // session, bearer; "" for nobody
	From     string `json:"from"`
	Verified bool   `json:"verified"` // always false: check-policy verifies no token
}

type policyRuleLists struct {
	From    string   `json:"from,omitempty"` // route, or app (its allow_if and deny_if defaults)
	AllowIf []string `json:"allow_if"`
	DenyIf  []string `json:"deny_if"`
}

type policyRule struct {
	Rule   string        `json:"rule"`
	List   string        `json:"list"` // allow_if or deny_if
	Source string        `json:"source"`
	Inputs []policyInput `json:"inputs"`
	Result bool          `json:"result"`
	Error  string        `json:"error,omitempty"`
}

type policyInput struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type policyDecision struct {
	Allow           bool              `json:"allow"`
	Status          int               `json:"status,omitempty"` // of a denied answer
	Reason          string            `json:"reason"`
	Rule            string            `json:"rule,omitempty"`
	UpstreamHeaders map[string]string `json:"upstream_headers"` // allowed: set on the request to the app
	Headers         map[string]string `json:"headers"`          // denied: of the local reply
}

// describe is the user part of the report.
func (who dryUser) describe() policyUser {
	u := policyUser{From: who.from}
	if who.claims == nil {
		return u
	}
	u.Sub, _ = who.claims["sub"].(string)
	u.Via = "session"
	if who.bearer {
		u.Via = "bearer"
	}
	return u
}

// reportDecision renders d with the values of secret headers masked.
func reportDecision(d *authz.Decision, secret map[string]bool) policyDecision {
	if secret == nil {
		secret = map[string]bool{"set-cookie": true}
	}
	out := policyDecision{Allow: d.Allow, Reason: string(d.Reason), Rule: d.Rule,
		UpstreamHeaders: map[string]string{}, Headers: map[string]string{}}
	if !d.Allow {
		out.Status = d.Status
	}
	add := func(m map[string]string, h authz.Header) {
		v := h.Value
		if secret[strings.ToLower(h.Name)] {
			v = fmt.Sprintf("<token, %d bytes>", len(v))
		}
		if old, dup := m[h.Name]; dup {
			v = old + ", " + v
		}
		m[h.Name] = v
	}
	// The upstream headers as Check sends them to Envoy: the identity
	// block is rendered into the answer, not kept in d.Upstream.
	for _, h := range d.Response().GetOkResponse().GetHeaders() {
		v := h.GetHeader().GetValue()
		if v == "" {
			v = string(h.GetHeader().GetRawValue())
		}
		add(out.UpstreamHeaders, authz.Header{Name: h.GetHeader().GetKey(), Value: v})
	}
	for _, h := range d.Headers {
		add(out.Headers, h)
	}
	return out
}

// print writes the report as text; without explain, the final line only.
func (rep *policyReport) print(w io.Writer, explain bool) {
	if explain {
		rep.printExplanation(w)
	}
	fmt.Fprintln(w, rep.finalLine())
}

// printExplanation writes how the answer came about.
func (rep *policyReport) printExplanation(w io.Writer) {
	api := "a browser (accept: text/html)"
	if rep.Request.API {
		api = "an API caller (accept: application/json)"
	}
	fmt.Fprintf(w, "request:  %s %s, from %s at %s\n", rep.Request.Method, rep.Request.URL, api, rep.Request.Source)
	app := rep.App
	if app == "" {
		app = "none"
	}
	fmt.Fprintf(w, "app:      %s: %s\n", app, rep.Why)
	fmt.Fprintf(w, "route:    %s\n", routeText(rep.Route))
	fmt.Fprintf(w, "user:     %s\n", userText(rep.User))
	if rep.Endpoint != "" {
		return
	}
	if rep.App != "" {
		rep.printRules(w)
	}
	if len(rep.Decision.UpstreamHeaders) > 0 {
		fmt.Fprintln(w, "upstream headers (set on the request to the app, replacing the client's):")
		printHeaders(w, rep.Decision.UpstreamHeaders)
	}
	if h := telling(rep.Decision.Headers); len(h) > 0 {
		fmt.Fprintln(w, "reply headers (the page's security headers left out; --json has them):")
		printHeaders(w, h)
	}
	if rep.Note != "" {
		fmt.Fprintf(w, "note:     %s\n", rep.Note)
	}
}

// printRules writes the rules the route runs and each one that ran.
func (rep *policyReport) printRules(w io.Writer) {
	l := rep.RuleLists
	if len(l.AllowIf)+len(l.DenyIf) == 0 {
		fmt.Fprintln(w, "rules:    none (no allow_if or deny_if, on the route or as the app's defaults)")
		return
	}
	from := "the route's"
	if l.From == "app" {
		from = "the app's defaults (the route names none)"
	}
	fmt.Fprintf(w, "rules:    %s: deny_if [%s], allow_if [%s]\n", from, strings.Join(l.DenyIf, ", "), strings.Join(l.AllowIf, ", "))
	switch {
	case len(rep.Rules) > 0:
	case rep.Decision.Reason == string(authz.ReasonUnknownRule):
		fmt.Fprintf(w, "          no rule ran: %s is not defined under [rules]\n", rep.Decision.Rule)
	default:
		fmt.Fprintln(w, "          no rule ran: the answer came before the rules")
	}
	for _, r := range rep.Rules {
		fmt.Fprintf(w, "  %s %s = %s\n", r.List, r.Rule, r.Source)
		for _, in := range r.Inputs {
			fmt.Fprintf(w, "      %s = %s\n", in.Name, in.Value)
		}
		fmt.Fprintf(w, "    → %s\n", ruleOutcome(r))
	}
}

// ruleOutcome says what a rule's result does on its list.
func ruleOutcome(r policyRule) string {
	switch {
	case r.Error != "":
		return "error: " + r.Error + " (denies)"
	case r.List == "deny_if" && r.Result:
		return "true: denies"
	case r.List == "deny_if":
		return "false: passes"
	case r.Result:
		return "true: passes"
	default:
		return "false: denies"
	}
}

func routeText(ext map[string]string) string {
	if len(ext) == 0 {
		return "no context_extensions"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(ext)) {
		parts = append(parts, k+"="+ext[k])
	}
	return "context_extensions " + strings.Join(parts, " ")
}

func userText(u policyUser) string {
	if u.Via == "" {
		return u.From
	}
	return fmt.Sprintf("%s via %s", u.Sub, u.From)
}

// telling are the headers of a denied answer that say something about
// the decision (not the security headers every page of ours has).
func telling(h map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range h {
		switch k {
		case "cache-control", "content-type", "content-security-policy", "referrer-policy", "x-content-type-options", "x-frame-options":
		default:
			out[k] = v
		}
	}
	return out
}

func printHeaders(w io.Writer, h map[string]string) {
	for _, k := range slices.Sorted(maps.Keys(h)) {
		fmt.Fprintf(w, "  %s: %s\n", k, h[k])
	}
}

// finalLine is the answer in one line.
func (rep *policyReport) finalLine() string {
	d := rep.Decision
	switch {
	case rep.Endpoint != "":
		return fmt.Sprintf("not the policy's: %s is our own endpoint (%s): Check answers it itself", rep.Request.URL, rep.Endpoint)
	case d.Allow:
		names := slices.Sorted(maps.Keys(d.UpstreamHeaders))
		return fmt.Sprintf("allow (reason %s), upstream headers: %s", d.Reason, strings.Join(names, ", "))
	}
	line := fmt.Sprintf("deny: %d, reason %s", d.Status, d.Reason)
	if d.Rule != "" {
		line += ", rule " + d.Rule
	}
	if wa := d.Headers["www-authenticate"]; wa != "" {
		line += ", www-authenticate: " + wa
	}
	switch {
	case d.Headers["location"] != "":
		line += ", location " + d.Headers["location"]
	case d.Reason == string(authz.ReasonStepUpRedirect):
		need := cmp.Or(d.Headers["x-step-up"], "the route's max_age or required_amr")
		line += " (back to the IdP for a sign-in that meets " + need + ")"
	case d.Reason == string(authz.ReasonLoginRedirect):
		line += " (to the IdP's sign-in; a live Check adds a fresh state)"
	case d.Status >= 200 && d.Status < 300:
		line += " (a page of ours, not the app)"
	}
	return line
}
