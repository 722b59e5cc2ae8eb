package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/cmd/zitadel-ext-authz/zitadelsetup"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/oidcflow"
)

// zitadelBootstrap is the `zitadel-bootstrap` subcommand: set up a fresh
// ZITADEL for the server (docker-compose.yml runs it once).
func zitadelBootstrap(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	opts, dial, code, ok := bootstrapOptions(args, stderr)
	if !ok {
		return code
	}
	var dialMap map[string]string
	if dial != "" {
		u, _ := url.Parse(opts.Issuer) // checked by bootstrapOptions
		dialMap = oidcflow.DialFor(u, dial)
	}
	opts.HTTPClient = oidcflow.NewHTTPClientDialing(30*time.Second, dialMap)
	opts.Logger = slog.New(slog.NewTextHandler(stderr, nil))
	res, err := zitadelsetup.Run(ctx, opts)
	if err != nil {
		fmt.Fprintln(stderr, "zitadel-bootstrap:", err)
		return 1
	}
	fmt.Fprintf(stdout, "project %s, web client %s, introspection client %s, user %s; configuration written to %s\n",
		res.ProjectID, res.WebClientID, res.APIClientID, res.UserID, opts.Out)
	if res.UserLoginName != "" {
		fmt.Fprintf(stdout, "sign in at %s as %s (password: --user-password)\n", opts.AppURL, res.UserLoginName)
	}
	return 0
}

// bootstrapOptions reads zitadel-bootstrap's flags into the setup's
// options (all but the HTTP client and the logger) and the --dial
// override. ok is false when the command ends here: after --help (code
// 0), or with a usage error printed (code 2).
func bootstrapOptions(args []string, stderr io.Writer) (opts zitadelsetup.Options, dial string, code int, ok bool) {
	fs := pflag.NewFlagSet("zitadel-bootstrap", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&opts.Issuer, "issuer", "http://localhost:8080", "ZITADEL's external URL, as the browser sees it")
	fs.StringVar(&dial, "dial", "", "host:port to connect to instead of the issuer's host (e.g. zitadel:8080)")
	fs.StringVar(&opts.PATFile, "pat-file", "", "personal access token of an IAM_OWNER or ORG_OWNER machine user (required)")
	fs.StringVar(&opts.Template, "config-template", "", "server configuration (TOML) to complete (required)")
	fs.StringVar(&opts.Out, "out", "", "where to write the completed configuration (required)")
	chown := fs.String("chown", "", "uid:gid to give the written configuration")
	fs.StringVar(&opts.AppURL, "app-url", "http://localhost:8000", "URL users open through Envoy (redirect and post-logout URIs derive from it)")
	fs.StringVar(&opts.BackchannelLogoutURI, "backchannel-logout-uri", "", "register this back-channel logout URI on the Web app (e.g. https://app.example.com/oauth2/backchannel_logout)")
	fs.StringVar(&opts.Project, "project", "zitadel-ext-authz", "project name")
	fs.StringSliceVar(&opts.Roles, "roles", []string{"admin", "user"}, "project roles to create")
	fs.StringVar(&opts.WebApp, "web-app", "zitadel-ext-authz", "name of the Web (OIDC) application")
	fs.StringVar(&opts.APIApp, "api-app", "zitadel-ext-authz-introspection", "name of the API application used for introspection")
	fs.StringVar(&opts.User, "user", "alice", "demo user to create (empty: none)")
	fs.StringVar(&opts.Password, "user-password", "Password1!", "the demo user's password")
	fs.StringVar(&opts.Email, "user-email", "alice@example.com", "the demo user's verified e-mail")
	fs.StringSliceVar(&opts.UserRoles, "user-roles", []string{"admin", "user"}, "roles granted to the demo user")
	fs.DurationVar(&opts.Wait, "wait", 5*time.Minute, "how long to wait for ZITADEL")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return opts, "", 0, false
		}
		return opts, "", 2, false
	}
	if err := checkBootstrapOptions(&opts, *chown); err != nil {
		fmt.Fprintln(stderr, "zitadel-bootstrap:", err)
		return opts, "", 2, false
	}
	return opts, dial, 0, true
}

// checkBootstrapOptions reports missing required flags and a bad --issuer
// or --chown, and sets opts.OutOwner from chown.
func checkBootstrapOptions(opts *zitadelsetup.Options, chown string) error {
	var missing []string
	for name, v := range map[string]string{"pat-file": opts.PATFile, "config-template": opts.Template, "out": opts.Out} {
		if v == "" {
			missing = append(missing, "--"+name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s required", strings.Join(missing, ", "))
	}
	u, err := url.Parse(opts.Issuer)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--issuer %q is not an http(s) URL", opts.Issuer)
	}
	if chown != "" {
		uid, gid, ok := strings.Cut(chown, ":")
		a, err1 := strconv.Atoi(uid)
		b, err2 := strconv.Atoi(gid)
		if !ok || err1 != nil || err2 != nil {
			return fmt.Errorf("--chown %q is not uid:gid", chown)
		}
		opts.OutOwner = &[2]int{a, b}
	}
	return nil
}
