package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/session"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/cmd/zitadel-ext-authz/config"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/oidcflow"
)

// checkConfig is `check-config --config FILE [--key value …]`, like
// oauth2-proxy's --config-test: validate every key, run discovery and load
// the JWKS, print the effective configuration with secrets masked. Exit 0
// when the server would start and reach its IdP, 1 when the IdP can't be
// used or no sign-in could finish (a redirect_url on one of our own
// listeners), 2 when the configuration is invalid.
func checkConfig(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, warnings, err := config.Load(args, getenv)
	if errors.Is(err, config.ErrHelp) {
		fmt.Fprintln(stdout, "usage: zitadel-ext-authz check-config --config FILE [--key value ...]")
		return 0
	}
	if err != nil {
		// The warnings first: an unknown or ignored key is often why.
		for _, w := range warnings {
			fmt.Fprintln(stderr, "zitadel-ext-authz: warning:", w)
		}
		fmt.Fprintln(stderr, "zitadel-ext-authz:", err)
		return 2
	}
	if _, err := session.NewCodec(cfg.CookieSecrets...); err != nil {
		fmt.Fprintln(stderr, "zitadel-ext-authz: cookie_secret:", err)
		return 2
	}
	for _, w := range warnings {
		fmt.Fprintln(stderr, "zitadel-ext-authz: warning:", w)
	}
	// Which file this was about: without --config only flags and
	// ZITADEL_EXT_AUTHZ_*/OAUTH2_PROXY_* variables were read.
	if cfg.Path != "" {
		fmt.Fprintf(stdout, "# read %s\n", cfg.Path)
	} else {
		fmt.Fprintln(stdout, "# no --config file: flags and ZITADEL_EXT_AUTHZ_* / OAUTH2_PROXY_* variables only")
	}
	// A callback that can't be reached makes every sign-in fail: not a
	// warning here, where people ask whether the file works.
	code := 0
	for _, p := range cfg.CallbackProblems() {
		fmt.Fprintln(stderr, "zitadel-ext-authz:", p)
		code = 1
	}
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

	// Each issuer's discovery and JWKS once (shared by its apps); each app's
	// client against what discovery says.
	dial := &oidcflow.DialMap{}
	dial.Set(cfg.IssuerDials())
	client := oidcflow.NewIdPClient(10*time.Second, dial, cfg.IdPTLS)
	issuers := oidcflow.NewIssuers(client, time.Now)
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	failed := map[string]bool{}
	checked := map[string]bool{}
	for _, a := range cfg.AllApps() {
		iss := a.OIDC.Issuer
		if failed[iss] {
			continue
		}
		opts := []oidcflow.Option{oidcflow.WithHTTPClient(client), oidcflow.WithIssuers(issuers)}
		if a.BearerEnabled {
			opts = append(opts, oidcflow.WithBearer(a.Bearer, nil))
		}
		provider, err := oidcflow.New(a.OIDC, opts...)
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
