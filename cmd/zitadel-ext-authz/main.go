// Command zitadel-ext-authz is an Envoy ext_authz gRPC service that puts a
// ZITADEL (OpenID Connect) login in front of anything behind Envoy or Istio.
//
// This package is the one composition root. serve loads the configuration,
// and newServer (server.go) composes the process from units, each with
// Start and Stop: the log writer, telemetry, the graph package wiring
// builds (the IdP HTTP client, the caches, oidcflow, authz, the session
// stores), the listeners, the gRPC + health server, the operations and
// metrics HTTP servers, and the reload watcher; they run until SIGTERM or
// SIGINT. check-config reaches the IdP through the same wiring.NewIdP.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

const usage = `zitadel-ext-authz: a ZITADEL login for Envoy and Istio (ext_authz gRPC)

Usage:
  zitadel-ext-authz serve --config FILE        run the server (FILE: oauth2-proxy.cfg, .toml, .yaml, .json)
  zitadel-ext-authz check-config --config FILE validate FILE and reach the IdP; exit 0 ok, 1 IdP unusable or redirect_url unreachable, 2 invalid
  zitadel-ext-authz check-policy --config FILE --url URL [--ext k=v] [--token JWT | --claims FILE | --user SUB ...]
                                               what Check would answer this request of this user, and why (check-policy --help); exit 0 allow, 1 not, 2 invalid
  zitadel-ext-authz check-envoy [--config FILE] FILE...
                                               the route keys (context_extensions) of Envoy, Istio, Envoy Gateway or rendered
                                               Helm files ("-": stdin): unknown keys and bad values; exit 0 ok, 1 problems, 2 unreadable
  zitadel-ext-authz zitadel-bootstrap ...      create the project, apps and a user in a fresh ZITADEL
  zitadel-ext-authz healthcheck [URL]          probe /readyz (for containers without a shell)
  zitadel-ext-authz version                    print the version
  zitadel-ext-authz help                       print this text

Every configuration key can be a flag (serve --help lists them all), an
environment variable ZITADEL_EXT_AUTHZ_<KEY>, or a line of FILE.
`

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "help", "--help", "-help", "-h":
		fmt.Fprint(stdout, usage)
		return 0
	case "version", "--version":
		fmt.Fprintln(stdout, "zitadel-ext-authz", version)
		return 0
	case "serve":
		return serve(ctx, args[1:], getenv, stdout, stderr)
	case "check-config":
		return checkConfig(ctx, args[1:], getenv, stdout, stderr)
	case "check-policy":
		return checkPolicy(args[1:], getenv, stdout, stderr)
	case "check-envoy":
		return checkEnvoy(args[1:], getenv, os.Stdin, stdout, stderr)
	case "zitadel-bootstrap":
		return zitadelBootstrap(ctx, args[1:], stdout, stderr)
	case "healthcheck":
		return healthcheck(ctx, args[1:], stderr)
	default:
		fmt.Fprintf(stderr, "zitadel-ext-authz: unknown command %q; use serve, check-config, check-policy, check-envoy, zitadel-bootstrap, healthcheck, version or help\n", args[0])
		return 2
	}
}
