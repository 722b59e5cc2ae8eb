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
	fs := pflag.NewFlagSet("zitadel-bootstrap", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	issuer := fs.String("issuer", "http://localhost:8080", "ZITADEL's external URL, as the browser sees it")
	dial := fs.String("dial", "", "host:port to connect to instead of the issuer's host (e.g. zitadel:8080)")
	pat := fs.String("pat-file", "", "personal access token of an IAM_OWNER or ORG_OWNER machine user (required)")
	template := fs.String("config-template", "", "server configuration (TOML) to complete (required)")
	out := fs.String("out", "", "where to write the completed configuration (required)")
	chown := fs.String("chown", "", "uid:gid to give the written configuration")
	appURL := fs.String("app-url", "http://localhost:8000", "URL users open through Envoy (redirect and post-logout URIs derive from it)")
	backchannel := fs.String("backchannel-logout-uri", "", "register this back-channel logout URI on the Web app (e.g. https://app.example.com/oauth2/backchannel_logout)")
	project := fs.String("project", "zitadel-ext-authz", "project name")
	roles := fs.StringSlice("roles", []string{"admin", "user"}, "project roles to create")
	webApp := fs.String("web-app", "zitadel-ext-authz", "name of the Web (OIDC) application")
	apiApp := fs.String("api-app", "zitadel-ext-authz-introspection", "name of the API application used for introspection")
	user := fs.String("user", "alice", "demo user to create (empty: none)")
	password := fs.String("user-password", "Password1!", "the demo user's password")
	email := fs.String("user-email", "alice@example.com", "the demo user's verified e-mail")
	userRoles := fs.StringSlice("user-roles", []string{"admin", "user"}, "roles granted to the demo user")
	wait := fs.Duration("wait", 5*time.Minute, "how long to wait for ZITADEL")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		return 2
	}
	var missing []string
	for name, v := range map[string]string{"pat-file": *pat, "config-template": *template, "out": *out} {
		if v == "" {
			missing = append(missing, "--"+name)
		}
	}
	if len(missing) > 0 {
		fmt.Fprintf(stderr, "zitadel-bootstrap: %s required\n", strings.Join(missing, ", "))
		return 2
	}
	u, err := url.Parse(*issuer)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		fmt.Fprintf(stderr, "zitadel-bootstrap: --issuer %q is not an http(s) URL\n", *issuer)
		return 2
	}
	var owner *[2]int
	if *chown != "" {
		uid, gid, ok := strings.Cut(*chown, ":")
		a, err1 := strconv.Atoi(uid)
		b, err2 := strconv.Atoi(gid)
		if !ok || err1 != nil || err2 != nil {
			fmt.Fprintf(stderr, "zitadel-bootstrap: --chown %q is not uid:gid\n", *chown)
			return 2
		}
		owner = &[2]int{a, b}
	}
	var dialMap map[string]string
	if *dial != "" {
		dialMap = oidcflow.DialFor(u, *dial)
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	res, err := zitadelsetup.Run(ctx, zitadelsetup.Options{
		Issuer:               *issuer,
		HTTPClient:           oidcflow.NewHTTPClientDialing(30*time.Second, dialMap),
		PATFile:              *pat,
		Project:              *project,
		Roles:                *roles,
		AppURL:               *appURL,
		BackchannelLogoutURI: *backchannel,
		WebApp:               *webApp,
		APIApp:               *apiApp,
		User:                 *user,
		Password:             *password,
		Email:                *email,
		UserRoles:            *userRoles,
		Template:             *template,
		Out:                  *out,
		OutOwner:             owner,
		Wait:                 *wait,
		Logger:               logger,
	})
	if err != nil {
		fmt.Fprintln(stderr, "zitadel-bootstrap:", err)
		return 1
	}
	fmt.Fprintf(stdout, "project %s, web client %s, introspection client %s, user %s; configuration written to %s\n",
		res.ProjectID, res.WebClientID, res.APIClientID, res.UserID, *out)
	if res.UserLoginName != "" {
		fmt.Fprintf(stdout, "sign in at %s as %s (password: --user-password)\n", *appURL, res.UserLoginName)
	}
	return 0
}
