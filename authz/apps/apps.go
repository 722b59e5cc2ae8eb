// Package apps lets one ext_authz server serve many applications, each
// with its own ZITADEL client, cookies and policy (the configuration's apps
// list): Router is the Authorization service Envoy calls, and hands each
// Check to the app it belongs to, chosen by the route's context_extensions
// key "app" or else by the request's host.
package apps

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz"
)

// ContextKey is the context_extensions key that names the app on an Envoy
// route; it wins over the host.
const ContextKey = authz.AppRouteKey

// DefaultName is the default app's name (the top-level keys' app), as a
// route's app value: the shipped Envoy files name it on the catch-all
// virtual host.
const DefaultName = "default"

// Answerer answers the Checks of one app, parsed once by the Router;
// *authz.Server is one.
type Answerer interface {
	Answer(ctx context.Context, r *authz.Request) *authv3.CheckResponse
}

// Entry is one app in a Table: its name, the hosts it claims and the
// server that answers its Checks.
type Entry struct {
	Name   string
	Hosts  []string // exact names and "*.domain" wildcards, lower case, no port
	Server Answerer
}

// Table is the immutable routing of hosts and names to apps; a reload
// builds a new one and swaps it in (Router.SetTable).
type Table struct {
	byName map[string]*Entry
	exact  map[string]*Entry
	wild   map[string]*Entry // "*.example.com" is stored as "example.com"
	def    *Entry            // the default app: hosts no other app claims; nil: none
}

// NewTable routes to apps; def (may be nil) takes every host no app
// claims. Host claims must be unique (the configuration checks that);
// here the first claim wins.
func NewTable(def *Entry, apps ...*Entry) *Table {
	t := &Table{byName: map[string]*Entry{}, exact: map[string]*Entry{}, wild: map[string]*Entry{}, def: def}
	if def != nil {
		t.byName[def.Name] = def
	}
	for _, a := range apps {
		t.byName[a.Name] = a
		for _, h := range a.Hosts {
			m, k := t.exact, h
			if rest, ok := strings.CutPrefix(h, "*."); ok {
				m, k = t.wild, rest
			}
			if _, taken := m[k]; !taken {
				m[k] = a
			}
		}
	}
	return t
}

// Names lists the apps by name.
func (t *Table) Names() []string {
	out := make([]string, 0, len(t.byName))
	for n := range t.byName {
		out = append(out, n)
	}
	return out
}

// Lookup finds the app for a route's app name (when set) or else the host,
// matched as Envoy matches a virtual host's domains, so that the app we
// judge with is the one whose upstream Envoy routes to: ASCII letters in
// any case (not Unicode: a Kelvin sign is no k), a numeric port ignored
// (Envoy's "host:*" domains), an exact name first, then the longest
// wildcard ("*.example.com" covers a.example.com and a.b.example.com, not
// example.com or ".example.com"), then the default app. A host whose
// virtual host depends on Envoy's settings (a trailing dot, an empty or
// non-numeric port, a wildcard app's host with a port) is no app's: either
// choice could be the wrong one. reason says why there is none:
// authz.ReasonUnknownApp or authz.ReasonUnknownHost.
//
// The name DefaultName is the default app (Envoy's catch-all virtual host
// names it): without a default app it is an unknown host, as that virtual
// host's requests would be without the name.
func (t *Table) Lookup(name, host string) (a *Entry, reason authz.Reason) {
	if name != "" {
		if a := t.byName[name]; a != nil {
			return a, ""
		}
		if name == DefaultName {
			return nil, authz.ReasonUnknownHost
		}
		return nil, authz.ReasonUnknownApp
	}
	if len(t.exact) == 0 && len(t.wild) == 0 {
		if t.def == nil {
			return nil, authz.ReasonUnknownHost
		}
		return t.def, ""
	}
	host, port, ok := splitHost(host)
	if !ok {
		// A trailing dot, an empty or a non-numeric port: Envoy may have
		// matched it to an app's "host:*" domains or to its catch-all,
		// depending on its settings. Judging it with either app's rules
		// could be the wrong one: no app.
		return nil, authz.ReasonUnknownHost
	}
	if a := t.exact[host]; a != nil {
		return a, ""
	}
	if a := t.wildcard(host); a != nil {
		if port {
			// Envoy can't write a domain with both a wildcard and a port:
			// "*.example.com" doesn't take "a.example.com:8443" (unless
			// ignore_port_in_host_matching), so whether that app's
			// virtual host got it is unknown here: no app.
			return nil, authz.ReasonUnknownHost
		}
		return a, ""
	}
	if t.def == nil {
		return nil, authz.ReasonUnknownHost
	}
	return t.def, ""
}

// wildcard is the app of the longest wildcard that matches host, as Envoy
// matches "*.example.com": a host longer than ".example.com" that ends
// with it. So every dot but one at the start, from the left.
func (t *Table) wildcard(host string) *Entry {
	if len(t.wild) == 0 || host == "" {
		return nil
	}
	for i := 1; i < len(host); {
		j := strings.IndexByte(host[i:], '.')
		if j < 0 {
			return nil
		}
		i += j
		if a := t.wild[host[i+1:]]; a != nil {
			return a
		}
		i++
	}
	return nil
}

// splitHost drops a numeric port (port: there was one) and lower-cases
// ASCII letters, as Envoy does before it matches domains
// (absl::AsciiStrToLower); nothing else is folded: non-ASCII letters stay
// as they are (strings.ToLower would fold U+212A KELVIN SIGN to "k" and
// hand a foreign host to an app). ok is false for a host whose app depends
// on Envoy's settings: a trailing dot, an empty or non-numeric port. It
// allocates only for a host with upper-case letters.
func splitHost(h string) (host string, port, ok bool) {
	if i := strings.LastIndexByte(h, ':'); i >= 0 && (!strings.HasPrefix(h, "[") || h[i-1] == ']') { // "[::1]:443", not "[::1]"
		if !allDigits(h[i+1:]) {
			return "", false, false
		}
		h, port = h[:i], true
	}
	if strings.HasSuffix(h, ".") {
		return "", port, false
	}
	return lowerASCII(h), port, true
}

// lowerASCII lower-cases A-Z only.
func lowerASCII(h string) string {
	for i := 0; i < len(h); i++ {
		if c := h[i]; 'A' <= c && c <= 'Z' {
			b := []byte(h)
			for j, c := range b {
				if 'A' <= c && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return h
}

// allDigits: a port Envoy's "host:*" and we agree on (1 to 5 digits).
func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return len(s) >= 1 && len(s) <= 5
}

// Router implements envoy.service.auth.v3.Authorization over a Table.
type Router struct {
	authv3.UnimplementedAuthorizationServer

	table    atomic.Pointer[Table]
	logger   *slog.Logger
	observer authz.Observer // sees the Checks that reach no app; nil: none
}

// NewRouter routes by t. observer (may be nil) sees the Checks no app
// answers; the apps observe their own.
func NewRouter(t *Table, logger *slog.Logger, observer authz.Observer) *Router {
	r := &Router{logger: logger, observer: observer}
	r.table.Store(t)
	return r
}

// SetTable replaces the routing (hot reload); Checks already routed finish
// with the app they were given.
func (r *Router) SetTable(t *Table) { r.table.Store(t) }

// Lookup is the app Check hands a request with this route app name and
// host to (Table.Lookup), for check-policy.
func (r *Router) Lookup(name, host string) (*Entry, authz.Reason) {
	return r.table.Load().Lookup(name, host)
}

// Check parses the request once and hands it to its app, or denies it
// when it can't be parsed or there is no app for it.
func (r *Router) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	parsed, err := authz.ParseRequest(req)
	if err != nil {
		// No host to choose an app by: counted under no app.
		return r.refuse(ctx, "", authz.BadRequest(err),
			slog.String("cause", "the CheckRequest could not be decoded; Envoy sends valid UTF-8 and protobuf, so look at the caller")), nil
	}
	name := parsed.ContextExtensions[ContextKey]
	a, reason := r.table.Load().Lookup(name, parsed.Host)
	if a != nil {
		return a.Server.Answer(ctx, parsed), nil
	}
	if reason == authz.ReasonUnknownApp {
		return r.refuse(ctx, parsed.ID, authz.NoApp(reason), slog.String("app", authz.Clip(name, 64)),
			slog.String("fix", "the route's context_extensions name an app that is not configured: add it to apps, or correct the route")), nil
	}
	return r.refuse(ctx, parsed.ID, authz.NoApp(reason), slog.String("host", authz.Clip(parsed.Host, 255)),
		slog.String("fix", "add the host to an app's hosts, or configure a default app (top-level client_id)")), nil
}

// refuse answers a Check no app takes: d, with the no-app metadata, logged
// and observed like an app's.
func (r *Router) refuse(ctx context.Context, requestID string, d *authz.Decision, attrs ...slog.Attr) *authv3.CheckResponse {
	start := time.Now()
	d.Metadata = noAppMetadata(d.Reason)
	authz.LogDecision(ctx, r.logger, requestID, d, attrs...)
	if r.observer != nil {
		r.observer.Decided(ctx, d, time.Since(start))
	}
	return d.Response()
}

// noAppMetadata is the dynamic metadata of an answer no app gives.
func noAppMetadata(reason authz.Reason) *structpb.Struct {
	return &structpb.Struct{Fields: map[string]*structpb.Value{
		"reason": structpb.NewStringValue(string(reason)), "app": structpb.NewStringValue("none"),
	}}
}
