package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// healthcheck is the `healthcheck [URL]` subcommand: exit 0 when URL
// (default: the ops listener's /readyz) answers 200. Container images
// without a shell use it for HEALTHCHECK and compose healthchecks.
func healthcheck(ctx context.Context, args []string, stderr io.Writer) int {
	target := "http://127.0.0.1:4180/readyz"
	if len(args) > 1 {
		fmt.Fprintln(stderr, "usage: zitadel-ext-authz healthcheck [URL]")
		return 2
	}
	if len(args) == 1 {
		target = args[0]
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		fmt.Fprintln(stderr, "healthcheck:", err)
		return 2
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(stderr, "healthcheck:", err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "healthcheck: %s answered %s\n", target, resp.Status)
		return 1
	}
	return 0
}
