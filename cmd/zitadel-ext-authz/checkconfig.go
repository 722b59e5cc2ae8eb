package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/session"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/cmd/zitadel-ext-authz/config"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/cmd/zitadel-ext-authz/wiring"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/oidcflow"
)

// check-config's bounds: one IdP request, and the whole check, so a slow
// issuer answers in time for the others to be tried.
const (
	checkIdPTimeout = 10 * time.Second
	checkTimeout    = 20 * time.Second
)

// checkConfig is `check-config --config FILE [--key value …]`, like
// oauth2-proxy's --config-test: validate every key, run discovery and load
// the JWKS, print the effective configuration with secrets masked and the
// request headers Check reads (Envoy must send them). Exit 0
// when the server would start and reach its IdP, 1 when the IdP can't be
// used or no sign-in could finish (a redirect_url on one of our own
// listeners), 2 when the configuration is invalid.
func checkConfig(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, warnings, code, ok := loadConfig(args, getenv, stderr, func() {
		fmt.Fprintln(stdout, "usage: zitadel-ext-authz check-config --config FILE [--key value ...]")
	})
	if !ok {
		return code
	}
	if _, err := session.NewCodec(cfg.CookieSecrets...); err != nil {
		fmt.Fprintln(stderr, "zitadel-ext-authz: cookie_secret:", err)
		return 2
	}
	for _, w := range warnings {
		fmt.Fprintln(stderr, "zitadel-ext-authz: warning:", w)
	}
	printSource(cfg, stdout)
	// A callback that can't be reached makes every sign-in fail: not a
	// warning here, where people ask whether the file works.
	for _, p := range cfg.CallbackProblems() {
		fmt.Fprintln(stderr, "zitadel-ext-authz:", p)
		code = 1
	}
	printEffective(cfg, stdout)
	printRequestHeaders(cfg, stdout)
	return max(code, checkIssuers(ctx, cfg, stdout, stderr))
}

// printSource says which file this was about: without --config only flags
// and ZITADEL_EXT_AUTHZ_*/OAUTH2_PROXY_* variables were read.
func printSource(cfg *config.Config, stdout io.Writer) {
	if cfg.Path != "" {
		fmt.Fprintf(stdout, "# read %s\n", cfg.Path)
	} else {
		fmt.Fprintln(stdout, "# no --config file: flags and ZITADEL_EXT_AUTHZ_* / OAUTH2_PROXY_* variables only")
	}
}

// printEffective prints the effective configuration with secrets masked,
// how each oauth2-proxy option was understood, and each app's keys.
func printEffective(cfg *config.Config, stdout io.Writer) {
	fmt.Fprintln(stdout, "# effective configuration (secrets masked)")
	for _, line := range cfg.Masked() {
		fmt.Fprintln(stdout, line)
	}
	if len(cfg.OAuth2Proxy) > 0 {
		fmt.Fprintln(stdout, "\n# oauth2-proxy options: how each was understood")
		for _, line := range cfg.OAuth2Proxy {
			fmt.Fprintln(stdout, line)
		}
	}
	for _, a := range cfg.Apps {
		fmt.Fprintf(stdout, "\n# app %s: the top level's keys with this app's own (marked) over them\n", a.Name)
		for _, line := range a.MaskedApp() {
			fmt.Fprintln(stdout, line)
		}
	}
	if !cfg.HasDefaultApp() {
		fmt.Fprintln(stdout, "\n# no default app (no top-level client_id): hosts no app claims get a 403 page")
	}
}

// checkIssuers runs each issuer's discovery and JWKS once (shared by its
// apps), through the IdP client the server builds (wiring.NewIdP), and
// checks each app's client against what discovery says. It returns 0, 1
// when an issuer can't be used, or 2 when an app's keys are invalid.
func checkIssuers(ctx context.Context, cfg *config.Config, stdout, stderr io.Writer) int {
	idp := wiring.NewIdP(cfg, wiring.Deps{IdPTimeout: checkIdPTimeout})
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	code := 0
	failed := map[string]bool{}
	checked := map[string]bool{}
	for _, a := range cfg.AllApps() {
		iss := a.OIDC.Issuer
		if failed[iss] {
			continue
		}
		var opts []oidcflow.Option
		if a.BearerEnabled {
			opts = append(opts, oidcflow.WithBearer(a.Bearer, nil))
		}
		provider, err := idp.NewProvider(a, opts...)
		if err != nil {
			fmt.Fprintf(stderr, "zitadel-ext-authz: app %s: %v\n", a.Name, err)
			return 2
		}
		if err := provider.Discover(ctx); err != nil {
			fmt.Fprintf(stderr, "zitadel-ext-authz: oidc_issuer_url %s (app %s): %v\n", iss, a.Name, err)
			failed[iss] = true
			code = 1
			continue
		}
		if w := provider.ClientAuthWarning(); w != "" {
			fmt.Fprintf(stderr, "zitadel-ext-authz: warning: app %s: %s\n", a.Name, w)
		}
		if !checked[iss] {
			checked[iss] = true
			fmt.Fprintf(stdout, "# discovery of %s and its JWKS: ok\n", iss)
		}
	}
	return code
}
