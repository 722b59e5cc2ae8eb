// Command zitadel-ext-authz is an Envoy ext_authz gRPC service that puts a
// ZITADEL (OpenID Connect) login in front of anything behind Envoy or Istio.
//
// This is the one composition root: it loads the configuration, builds the
// IdP HTTP client, the caches, oidcflow, authz, the gRPC + health server and
// the operations HTTP server, and runs them until SIGTERM or SIGINT.
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

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: zitadel-ext-authz serve --config FILE | check-config --config FILE | zitadel-bootstrap ... | healthcheck [URL] | version")
		return 2
	}
	switch args[0] {
	case "version", "--version":
		fmt.Fprintln(stdout, "zitadel-ext-authz", version)
		return 0
	case "serve":
		return serve(ctx, args[1:], getenv, stdout, stderr)
	case "check-config":
		return checkConfig(ctx, args[1:], getenv, stdout, stderr)
	case "zitadel-bootstrap":
		return zitadelBootstrap(ctx, args[1:], stdout, stderr)
	case "healthcheck":
		return healthcheck(ctx, args[1:], stderr)
	default:
		fmt.Fprintf(stderr, "zitadel-ext-authz: unknown command %q; use serve, check-config, zitadel-bootstrap, healthcheck or version\n", args[0])
		return 2
	}
}
