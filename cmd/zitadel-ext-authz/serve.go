package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"runtime/debug"
	"slices"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/backchannel"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/cmd/zitadel-ext-authz/config"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/cmd/zitadel-ext-authz/wiring"
)

// serve is `serve --config FILE [--key value …]`: it composes the server
// (newServer) and runs it until SIGTERM or SIGINT. Exit 0 after a clean
// shutdown, 1 when a part failed (a port in use, an IdP client that can't
// be built, a server that stopped on its own), 2 for an invalid
// configuration, before any listener opens.
func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, warnings, code, ok := loadConfig(args, getenv, stderr, func() { config.Usage(stdout) })
	if !ok {
		return code
	}
	logs := newLogUnit(cfg, stderr)
	defer logs.Stop(context.WithoutCancel(ctx))
	logger := logs.logger
	for _, w := range warnings {
		logger.Warn(w)
	}
	for _, p := range cfg.CallbackProblems() {
		logger.Warn(p, "key", "redirect_url")
	}
	setMemoryLimit(cfg, getenv, logger)
	s, code, err := newServer(ctx, cfg, args, getenv, logs)
	if err != nil {
		fmt.Fprintln(stderr, "zitadel-ext-authz:", err)
		return code
	}
	return s.run(ctx, stderr)
}

// loadConfig loads the configuration as serve and check-config read it.
// ok is false when the command ends here, with code: 0 after --help (usage
// printed it), 2 for an invalid configuration (printed to stderr after the
// warnings, since an unknown or ignored key is often why).
func loadConfig(args []string, getenv func(string) string, stderr io.Writer, usage func()) (cfg *config.Config, warnings []string, code int, ok bool) {
	cfg, warnings, err := config.Load(args, getenv)
	if errors.Is(err, config.ErrHelp) {
		usage()
		return nil, nil, 0, false
	}
	if err != nil {
		for _, w := range warnings {
			fmt.Fprintln(stderr, "zitadel-ext-authz: warning:", w)
		}
		fmt.Fprintln(stderr, "zitadel-ext-authz:", err)
		return nil, nil, 2, false
	}
	return cfg, warnings, 0, true
}

// appNames lists the apps served, for the start-up line.
func appNames(cfg *config.Config) []string {
	var out []string
	for _, a := range cfg.AllApps() {
		out = append(out, a.Name)
	}
	return out
}

// baseMemory is what the server needs besides its caches (measured by make
// bench: about 40 MB RSS under load with empty caches).
const baseMemory = 64 << 20

// setMemoryLimit sets Go's soft memory limit to the base plus every cache
// bound, unless GOMEMLIMIT is set: the GC then works harder as the caches
// fill instead of letting the heap grow to twice their size.
func setMemoryLimit(cfg *config.Config, getenv func(string) string, logger *slog.Logger) {
	if getenv("GOMEMLIMIT") != "" {
		return
	}
	limit := int64(baseMemory) + cfg.SessionCacheSize + wiring.RefreshCacheBytes
	if slices.ContainsFunc(cfg.AllApps(), func(a *config.App) bool { return a.BearerEnabled }) {
		limit += cfg.TokenCacheSize // one token cache, shared by the apps
	}
	debug.SetMemoryLimit(limit)
	logger.Debug("memory limit set", "bytes", limit)
}

// opsHandler is the operations listener: back-channel logout, /healthz,
// /readyz (and oauth2-proxy's ping_path and ready_path), /metrics, and
// pprof when enabled.
func opsHandler(ready func() (bool, string), metrics, backchannelLogout http.Handler, jwks func() []byte, withPprof bool, pingPath, readyPath string) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(backchannel.Path, backchannelLogout)
	// The keys of our identity assertions, for upstreams that reach us
	// directly (through Envoy: PREFIX/jwks).
	mux.HandleFunc("GET /.well-known/jwks.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", authz.JWKSCacheControl)
		_, _ = w.Write(jwks())
	})
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	healthz := func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") }
	readyz := func(w http.ResponseWriter, _ *http.Request) {
		if ok, why := ready(); !ok {
			http.Error(w, why, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	}
	mux.HandleFunc("GET /healthz", healthz)
	mux.HandleFunc("GET /readyz", readyz)
	// oauth2-proxy's ping_path and ready_path, for probes written for it.
	if pingPath != "" && pingPath != "/healthz" {
		mux.HandleFunc("GET "+pingPath, healthz)
	}
	if readyPath != "" && readyPath != "/readyz" && readyPath != pingPath {
		mux.HandleFunc("GET "+readyPath, readyz)
	}
	mux.Handle("GET /metrics", metrics)
	return mux
}
