package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/apps"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/cmd/zitadel-ext-authz/wiring"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/oidcflow"
)

// check-policy asks what Check would answer one request of one user,
// without the IdP, a session store or Envoy: the app is the Router's
// (apps.Router.Lookup), the request is authz.ParseRequest's reading of a
// CheckRequest built like Envoy's (envoy-ext-authz.md §1), and the
// decision is authz.Server.DecideAs, the steps of a live Check for a valid
// session or bearer token of that user. The user's claims are taken as
// given: a --token is read, not verified.

const checkPolicyUsage = `usage: zitadel-ext-authz check-policy --config FILE --url URL [flags] [user]

The request:
  --url URL            the request (scheme, host and path with the query)
  --method M           its method (default GET)
  --ext key=value      a context_extensions entry of the route (repeatable): app=…, allow_if=a,b, deny_if=c, …
  --header 'name: v'   a request header (repeatable)
  --api                an API caller (accept: application/json), not a browser (accept: text/html); on with --token
  --source IP          the client's address, as Envoy's CheckRequest source (default 192.0.2.10)

The user (none of these: nobody, no session and no token):
  --token JWT          a bearer token: its payload's claims, read but NOT verified; scopes from its scope claim
  --claims FILE        a JSON object of the user's claims: a session (--bearer: a bearer token); for a session,
                       the ID token's claims, with userinfo's added when the ID token has no email (as a login does)
  --user SUB           claims from flags: sub, and with it
    --email E            email (and email_verified true)
    --role R             a ZITADEL project role (repeatable), granted by --org
    --org ID             the user's organization id (urn:zitadel:iam:user:resourceowner:id)
    --group G            a group (repeatable; the oidc_groups_claim claim)
    --amr M              an authentication method (repeatable: pwd, mfa, otp, …)
    --auth-time T        when the user signed in: RFC 3339 or unix seconds (default now)
    --claim k=v          any other string claim (repeatable)
  --bearer             the user of --claims or --user comes with a bearer token, not a session
  --scope S            a granted scope (repeatable; default: the token's, or the app's scope for a session)

Output:
  --explain            how the answer came about (default true; --explain=false: the final line only)
  --json               one JSON object, for scripts

Exit 0 when Check would let the request through, 1 when not, 2 for a bad
configuration or input.
`

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// policyOptions are check-policy's flags.
type policyOptions struct {
	config, url, method, source  string
	ext, headers                 listFlag
	token, claimsFile            string
	user, email, org, authTime   string
	roles, groups, amr, scopes   listFlag
	claims                       listFlag
	bearer, api, explain, asJSON bool
	apiSet                       bool // --api given explicitly (else --token turns it on)
}

// parsePolicyFlags reads check-policy's flags; ok is false when the
// command ends here with code (0 after --help, 2 for a bad flag).
func parsePolicyFlags(args []string, stdout, stderr io.Writer) (o policyOptions, code int, ok bool) {
	fs := flag.NewFlagSet("check-policy", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.config, "config", "", "")
	fs.StringVar(&o.url, "url", "", "")
	fs.StringVar(&o.method, "method", "GET", "")
	fs.StringVar(&o.source, "source", "192.0.2.10", "")
	fs.Var(&o.ext, "ext", "")
	fs.Var(&o.headers, "header", "")
	fs.StringVar(&o.token, "token", "", "")
	fs.StringVar(&o.claimsFile, "claims", "", "")
	fs.StringVar(&o.user, "user", "", "")
	fs.StringVar(&o.email, "email", "", "")
	fs.StringVar(&o.org, "org", "", "")
	fs.StringVar(&o.authTime, "auth-time", "", "")
	fs.Var(&o.roles, "role", "")
	fs.Var(&o.groups, "group", "")
	fs.Var(&o.amr, "amr", "")
	fs.Var(&o.scopes, "scope", "")
	fs.Var(&o.claims, "claim", "")
	fs.BoolVar(&o.bearer, "bearer", false, "")
	fs.BoolVar(&o.api, "api", false, "")
	fs.BoolVar(&o.explain, "explain", true, "")
	fs.BoolVar(&o.asJSON, "json", false, "")
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, checkPolicyUsage)
		return o, 0, false
	}
	if err == nil && fs.NArg() > 0 {
		err = fmt.Errorf("unexpected argument %q: every input is a flag (--url URL, …)", fs.Arg(0))
	}
	if err == nil && o.url == "" {
		err = errors.New("--url: required, the request to check (such as --url https://app.example.com/admin/)")
	}
	if err != nil {
		fmt.Fprintf(stderr, "zitadel-ext-authz check-policy: %v (check-policy --help lists the flags)\n", err)
		return o, 2, false
	}
	fs.Visit(func(f *flag.Flag) { o.apiSet = o.apiSet || f.Name == "api" })
	if o.token != "" && !o.apiSet {
		o.api = true // a program sends bearer tokens, not a browser
	}
	return o, 0, true
}

// checkPolicy is `check-policy --config FILE --url URL …` (checkPolicyUsage):
// the app a Check of that request goes to and why, the route's settings,
// each rule with what it read and returned, and the answer. Exit 0 for an
// allow, 1 for anything else, 2 for a bad configuration or input.
func checkPolicy(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	o, code, ok := parsePolicyFlags(args, stdout, stderr)
	if !ok {
		return code
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "zitadel-ext-authz check-policy:", err)
		return 2
	}
	who, err := o.dryUser(time.Now())
	if err != nil {
		return fail(err)
	}
	r, err := o.request(who.token)
	if err != nil {
		return fail(err)
	}
	var cfgArgs []string
	if o.config != "" {
		cfgArgs = []string{"--config", o.config}
	}
	cfg, warnings, code, ok := loadConfig(cfgArgs, getenv, stderr, func() { fmt.Fprint(stdout, checkPolicyUsage) })
	if !ok {
		return code
	}
	for _, w := range warnings {
		fmt.Fprintln(stderr, "zitadel-ext-authz: warning:", w)
	}
	// Build does no I/O (no discovery, no Redis) until started, and it is
	// never started here; its logs (a rule that fails, …) would only
	// repeat the report.
	built, err := wiring.Build(cfg, wiring.Deps{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return fail(err)
	}
	defer built.Close()
	rep := decidePolicy(built, r, who)
	rep.Request = policyRequest{Method: r.Method, URL: o.url, API: o.api, Source: o.source}
	rep.User = who.describe()
	if o.asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false) // "<absent>", "<token, N bytes>" as they are
		enc.Encode(rep)
	} else {
		rep.print(stdout, o.explain)
	}
	if rep.Decision.Allow {
		return 0
	}
	return 1
}

// request is the CheckRequest Envoy would send for o's URL, read by
// authz.ParseRequest as Check reads it. token, when set, goes in the
// authorization header, as the caller would send it.
func (o policyOptions) request(token string) (*authz.Request, error) {
	u, err := url.Parse(o.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--url %q: want an absolute http or https URL, such as https://app.example.com/admin/", o.url)
	}
	ip, err := netip.ParseAddr(o.source)
	if err != nil {
		return nil, fmt.Errorf("--source %q: want an IP address, such as 203.0.113.7", o.source)
	}
	method := strings.ToUpper(o.method)
	accept := "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	if o.api {
		accept = "application/json"
	}
	headers := map[string]string{":authority": u.Host, ":method": method, ":path": u.RequestURI(), ":scheme": u.Scheme,
		"accept": accept, "x-request-id": "check-policy"}
	if token != "" {
		headers["authorization"] = "Bearer " + token
	}
	for _, h := range o.headers {
		name, value, found := strings.Cut(h, ":")
		if !found || strings.TrimSpace(name) == "" {
			return nil, fmt.Errorf("--header %q: want 'name: value', such as --header 'origin: https://app.example.com'", h)
		}
		headers[strings.ToLower(strings.TrimSpace(name))] = strings.TrimSpace(value)
	}
	ext, err := keyValues("--ext", o.ext, "--ext allow_if=owner_or_admin")
	if err != nil {
		return nil, err
	}
	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: ip.String(), PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 40000}}}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id: "check-policy", Method: method, Headers: headers, Path: u.RequestURI(), Host: u.Host, Scheme: u.Scheme, Protocol: "HTTP/1.1"}},
		ContextExtensions: ext,
	}}
	r, err := authz.ParseRequest(req)
	if err != nil {
		return nil, fmt.Errorf("--url %q: %w", o.url, err)
	}
	return r, nil
}

// keyValues reads repeated key=value flags into a map.
func keyValues(flagName string, list []string, example string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range list {
		k, v, found := strings.Cut(kv, "=")
		if !found || k == "" {
			return nil, fmt.Errorf("%s %q: want key=value, such as %s", flagName, kv, example)
		}
		out[k] = v
	}
	return out, nil
}

// dryUser is the user check-policy asks about: their claims (nil: nobody)
// and how they come.
type dryUser struct {
	claims map[string]any
	groups []string // --group values, put under the app's oidc_groups_claim
	bearer bool
	token  string
	scopes []string // nil: the token's scope claim, or the app's scope
	from   string   // where the claims came from, for the report
}

// userFlags reports whether any flag that builds claims was given.
func (o policyOptions) userFlags() bool {
	return o.user != "" || o.email != "" || o.org != "" || o.authTime != "" ||
		len(o.roles)+len(o.groups)+len(o.amr)+len(o.claims) > 0
}

// dryUser reads the user from --token, --claims or the claim flags.
func (o policyOptions) dryUser(now time.Time) (dryUser, error) {
	sources := 0
	for _, given := range []bool{o.token != "", o.claimsFile != "", o.userFlags()} {
		if given {
			sources++
		}
	}
	if sources > 1 {
		return dryUser{}, errors.New("--token, --claims and --user (with --email, --role, …) each describe the user: pass one of them")
	}
	var who dryUser
	var err error
	switch {
	case o.token != "":
		who, err = tokenUser(o.token)
	case o.claimsFile != "":
		who, err = fileUser(o.claimsFile, o.bearer)
	case o.userFlags():
		who, err = o.flagUser(now)
	case o.bearer || len(o.scopes) > 0:
		return dryUser{}, errors.New("--bearer and --scope describe a user's token: say who with --user, --claims or --token")
	default:
		return dryUser{from: "nobody: no session, no token"}, nil
	}
	if len(o.scopes) > 0 {
		who.scopes = o.scopes
	}
	return who, err
}

// tokenUser reads a bearer token's claims: its payload, not verified.
func tokenUser(token string) (dryUser, error) {
	claims, err := jwtClaims(token)
	if err != nil {
		return dryUser{}, fmt.Errorf("--token: %w", err)
	}
	return dryUser{claims: claims, bearer: true, token: token,
		from: "a bearer token (--token): its claims are read, NOT verified; check-policy asks what the policy does with these claims, not whether the token is valid"}, nil
}

// jwtClaims is the payload of a JWS compact serialization, unverified.
func jwtClaims(token string) (map[string]any, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a JWT (want header.payload.signature); an opaque token is only known to the IdP: put its introspection answer in a file and pass --claims FILE --bearer")
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return nil, fmt.Errorf("not a JWT: its payload is not base64url: %w", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil || claims == nil {
		return nil, errors.New("not a JWT: its payload is not a JSON object")
	}
	return claims, nil
}

// fileUser reads --claims: a JSON object of claims.
func fileUser(path string, bearer bool) (dryUser, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return dryUser{}, fmt.Errorf("--claims: %w", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(b, &claims); err != nil || claims == nil {
		return dryUser{}, fmt.Errorf("--claims %s: want a JSON object of claims, such as {\"sub\": \"alice\", \"email\": \"alice@example.com\"}", path)
	}
	from := "a session, claims from --claims " + path
	if bearer {
		from = "a bearer token, claims from --claims " + path + " (taken as given)"
	}
	return dryUser{claims: claims, bearer: bearer, from: from}, nil
}

// flagUser builds claims from --user, --email, --role, … as ZITADEL
// shapes them.
func (o policyOptions) flagUser(now time.Time) (dryUser, error) {
	if o.user == "" {
		return dryUser{}, errors.New("--email, --role, --group, --amr, --auth-time, --org and --claim describe a user: add --user SUB")
	}
	c := map[string]any{"sub": o.user}
	if o.email != "" {
		c["email"], c["email_verified"] = o.email, true
	}
	if len(o.roles) > 0 {
		roles := map[string]any{}
		for _, r := range o.roles {
			orgs := map[string]any{} // without --org: a role no known organization granted
			if o.org != "" {
				orgs[o.org] = "example"
			}
			roles[r] = orgs
		}
		c["urn:zitadel:iam:org:project:roles"] = roles
	}
	if o.org != "" {
		c[oidcflow.OrgIDClaim] = o.org
	}
	if len(o.amr) > 0 {
		c["amr"] = anyList(o.amr)
	}
	at, err := authTime(o.authTime, now)
	if err != nil {
		return dryUser{}, err
	}
	c["auth_time"] = float64(at.Unix())
	extra, err := keyValues("--claim", o.claims, "--claim locale=de")
	if err != nil {
		return dryUser{}, err
	}
	for k, v := range extra {
		c[k] = v
	}
	via := "a session"
	if o.bearer {
		via = "a bearer token"
	}
	return dryUser{claims: c, groups: o.groups, bearer: o.bearer, from: via + ", claims from flags"}, nil
}

// authTime reads --auth-time: RFC 3339 or unix seconds; "" is now.
func authTime(v string, now time.Time) (time.Time, error) {
	if v == "" {
		return now, nil
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Unix(n, 0), nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("--auth-time %q: want RFC 3339 (2026-12-01T09:30:00Z) or unix seconds", v)
	}
	return t, nil
}

func anyList(list []string) []any {
	out := make([]any, len(list))
	for i, s := range list {
		out[i] = s
	}
	return out
}

// claimsFor are the user's claims for app a: the --group values go under
// its oidc_groups_claim.
func (who dryUser) claimsFor(a *wiring.App) map[string]any {
	if len(who.groups) == 0 {
		return who.claims
	}
	c := make(map[string]any, len(who.claims)+1)
	for k, v := range who.claims {
		c[k] = v
	}
	name := a.Config.OIDC.GroupsClaim
	if name == "" {
		name = oidcflow.DefaultGroupsClaim
	}
	c[name] = anyList(who.groups)
	return c
}

// decidePolicy finds the app as Check does and asks it for the answer.
func decidePolicy(built *wiring.Built, r *authz.Request, who dryUser) *policyReport {
	rep := &policyReport{Route: r.ContextExtensions, Rules: []policyRule{}}
	if rep.Route == nil {
		rep.Route = map[string]string{}
	}
	name := r.ContextExtensions[apps.ContextKey]
	entry, reason := built.Router.Lookup(name, r.Host)
	rep.Why = whyApp(entry, reason, name, r.Host)
	if entry == nil {
		rep.Decision = reportDecision(authz.NoApp(reason), nil)
		return rep
	}
	a := built.App(entry.Name)
	rep.App = a.Name
	if ep := a.Server.Endpoint(r); ep != "" {
		rep.Endpoint = ep
		rep.Decision = policyDecision{UpstreamHeaders: map[string]string{}, Headers: map[string]string{}}
		return rep
	}
	dr := authz.DryRun{Bearer: who.bearer, Token: who.token, Scopes: who.scopes}
	if who.claims != nil {
		// What the server reads of these claims: a token's identity,
		// scopes and audiences, or a login's identity.
		b := a.Provider.BearerFromClaims(who.claimsFor(a))
		dr.Identity = &b.Identity
		switch {
		case dr.Scopes != nil: // --scope
		case who.bearer:
			dr.Scopes = b.Scopes
		default:
			dr.Scopes = a.Config.OIDC.Scopes // a session's: what the login asked for
		}
		if who.bearer {
			dr.Audiences = b.Audiences
		}
	}
	rep.RuleLists = ruleLists(a, r.ContextExtensions)
	d, trace := a.Server.DecideAs(r, dr)
	for _, e := range trace {
		pr := policyRule{Rule: e.Rule, Source: e.Source, Result: e.Result, List: e.List, Inputs: []policyInput{}}
		for _, f := range e.Inputs {
			pr.Inputs = append(pr.Inputs, policyInput{Name: f.Name, Value: f.Value})
		}
		if e.Err != nil {
			pr.Error = e.Err.Error()
		}
		rep.Rules = append(rep.Rules, pr)
	}
	rep.Decision = reportDecision(d, secretHeaders(a))
	switch {
	case who.bearer && who.claims != nil && !a.Config.BearerEnabled:
		rep.Note = "this app takes no bearer tokens (skip_jwt_bearer_tokens is off): a token counts as no session"
	case d.Allow && !who.bearer:
		rep.Note = sessionTokenNote(a.Config.Authz)
	}
	return rep
}

// sessionTokenNote says which token headers a live Check adds for a
// session: its tokens are the IdP's, which a dry run has none of.
func sessionTokenNote(c authz.Config) string {
	var keys []string
	if c.PassAccessToken {
		keys = append(keys, "pass_access_token")
	}
	if c.PassAuthorizationHeader {
		keys = append(keys, "pass_authorization_header")
	}
	if c.IDTokenHeader != "" {
		keys = append(keys, "id_token_header")
	}
	if len(keys) == 0 {
		return ""
	}
	return "a live Check also sends the session's tokens upstream (" + strings.Join(keys, ", ") + "); a dry run has none"
}

// whyApp says why entry is the app (or why there is none).
func whyApp(entry *apps.Entry, reason authz.Reason, name, host string) string {
	switch {
	case entry == nil && reason == authz.ReasonUnknownApp:
		return fmt.Sprintf("no app: the route names app %q (context_extensions %s), which is not configured", name, apps.ContextKey)
	case entry == nil && name == apps.DefaultName:
		return fmt.Sprintf("no app: the route names the default app (context_extensions %s=%s), and there is none (no top-level client_id)", apps.ContextKey, name)
	case entry == nil:
		return fmt.Sprintf("no app: no app claims host %q and there is no default app (or which virtual host Envoy picks for it depends on Envoy's settings)", host)
	case name != "":
		return fmt.Sprintf("the route names it (context_extensions %s=%s)", apps.ContextKey, name)
	}
	h := strings.ToLower(host)
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.HasSuffix(h, "]") {
		h = h[:i]
	}
	for _, pattern := range entry.Hosts {
		if pattern == h || strings.HasPrefix(pattern, "*.") && strings.HasSuffix(h, pattern[1:]) {
			return fmt.Sprintf("its hosts include %q (the request's host %q; the route names no app)", pattern, host)
		}
	}
	return fmt.Sprintf("the default app: no app claims host %q (the route names no app)", host)
}

// ruleLists are the rules the route runs: its own allow_if/deny_if when
// it names any (as authz reads them), else the app's defaults.
func ruleLists(a *wiring.App, ext map[string]string) policyRuleLists {
	deny, allow, own := authz.RouteRuleLists(a.Config.Authz, ext)
	from := "app"
	if own {
		from = "route"
	}
	return policyRuleLists{From: from, AllowIf: orNone(allow), DenyIf: orNone(deny)}
}

// orNone is l, or an empty list for JSON's [] (never null).
func orNone(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// secretHeaders are the header names whose values the report masks: the
// tokens, the identity assertion, cookies.
func secretHeaders(a *wiring.App) map[string]bool {
	s := map[string]bool{"authorization": true, "proxy-authorization": true, "cookie": true, "set-cookie": true,
		"x-forwarded-access-token": true, "x-auth-request-access-token": true}
	if h := a.Config.Authz.IDTokenHeader; h != "" {
		s[strings.ToLower(h)] = true
	}
	if h := a.Config.Authz.IdentityJWT.Header; h != "" {
		s[strings.ToLower(h)] = true
	}
	return s
}
