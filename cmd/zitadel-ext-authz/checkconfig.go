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
// used, 2 when the configuration is invalid.
func checkConfig(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, warnings, err := config.Load(args, getenv)
	if errors.Is(err, config.ErrHelp) {
		fmt.Fprintln(stdout, "usage: zitadel-ext-authz check-config --config FILE [--key value ...]")
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "zitadel-ext-authz:", err)
		return 2
	}
	if _, err := session.NewCodec(cfg.CookieSecrets...); err != nil {
		fmt.Fprintln(stderr, "zitadel-ext-authz: cookie_secret:", err)
		return 2
	}
	for _, w := range warnings {
		fmt.Fprintln(stderr, "warning:", w)
	}
	fmt.Fprintln(stdout, "# effective configuration (secrets masked)")
	for _, line := range cfg.Masked() {
		fmt.Fprintln(stdout, line)
	}

	opts := []oidcflow.Option{oidcflow.WithHTTPClient(oidcflow.NewHTTPClientDialing(10*time.Second, cfg.IssuerDial))}
	if cfg.BearerEnabled {
		opts = append(opts, oidcflow.WithBearer(cfg.Bearer, nil))
	}
	provider, err := oidcflow.New(cfg.OIDC, opts...)
	if err != nil {
		fmt.Fprintln(stderr, "zitadel-ext-authz:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := provider.Discover(ctx); err != nil {
		fmt.Fprintf(stderr, "zitadel-ext-authz: oidc_issuer_url %s: %v\n", cfg.OIDC.Issuer, err)
		return 1
	}
	fmt.Fprintf(stdout, "# discovery of %s and its JWKS: ok\n", cfg.OIDC.Issuer)
	return 0
}
