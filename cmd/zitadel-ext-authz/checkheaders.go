package main

import (
	"fmt"
	"io"
	"log/slog"
	"slices"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/cmd/zitadel-ext-authz/config"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/envoy"
)

// defaultHeaderNeeds are the request headers the default configuration
// reads: what check-envoy holds a list to without --config.
func defaultHeaderNeeds() []authz.HeaderNeed {
	return authz.RequestHeaders(authz.Config{IdentityJWT: authz.IdentityJWT{Header: authz.DefaultIdentityJWTHeader}}, false)
}

// checkHeaderLists reports each header a list of the file leaves out that
// Check reads (needs), with why and the fix: 0 none, 1 some. Without a
// list the proxy sends every header, which is always enough.
func checkHeaderLists(name string, lists []envoy.HeaderList, needs []authz.HeaderNeed, stdout io.Writer) int {
	problems := 0
	for _, l := range lists {
		for _, left := range l.Leaves(config.HeaderNames(needs)) {
			problems++
			fmt.Fprintf(stdout, "%s: document %d: %s: ERROR: %s\n", name, l.Doc, l.Where, leftOut(l, left, needs))
		}
	}
	switch {
	case problems > 0:
		fmt.Fprintf(stdout, "%s: %d header(s) Check reads left out of %d list(s): those features fail (README \"Headers Envoy sends to Check\")\n",
			name, problems, len(lists))
		return 1
	case len(lists) > 0:
		fmt.Fprintf(stdout, "%s: %d header list(s), none leaves out a header Check reads\n", name, len(lists))
	}
	return 0
}

// leftOut says which header l leaves out, why Check needs it, and the fix.
func leftOut(l envoy.HeaderList, name string, needs []authz.HeaderNeed) string {
	i := slices.IndexFunc(needs, func(n authz.HeaderNeed) bool { return n.Name == name })
	why := needs[i].Why
	if name == authz.AllHeaders {
		return fmt.Sprintf("%s narrows the headers sent to Check, but %s; fix: remove %s", l.Key, why, l.Key)
	}
	msg := fmt.Sprintf("%s leaves out %s, which Check reads: %s; fix: %s", l.Key, name, why, l.Fix(name))
	if p := l.CaseTrap(name); p != "" {
		msg += fmt.Sprintf(" (its %q never matches: Envoy's header names are lower case; write it in lower case or set ignore_case: true)", p)
	}
	return msg
}

// printRequestHeaders is check-config's list of the request headers Check
// reads under cfg, each with why.
func printRequestHeaders(cfg *config.Config, stdout io.Writer) {
	fmt.Fprintln(stdout, "\n# request headers Check reads: an Envoy allowed_headers list (Envoy Gateway: headersToExtAuth) must send each;")
	fmt.Fprintln(stdout, "# names with '_' only where the proxy lets such headers through (README \"Headers Envoy sends to Check\")")
	for _, n := range cfg.RequestHeaders() {
		fmt.Fprintf(stdout, "%-34s %s\n", n.Name, n.Why)
	}
}

// logRequestHeaders logs the request headers Check reads under cfg (one
// line, names only): an allowed_headers list that leaves one out breaks
// what reads it, quietly (check-envoy --config finds that before
// deploying). A rule that may read any header is a warning of its own.
func logRequestHeaders(logger *slog.Logger, cfg *config.Config) {
	needs := cfg.RequestHeaders()
	logger.Info("request headers Check reads: Envoy's allowed_headers must send each (check-config says why)", "headers", config.HeaderNames(needs))
	if i := slices.IndexFunc(needs, func(n authz.HeaderNeed) bool { return n.Name == authz.AllHeaders }); i >= 0 {
		logger.Warn("Envoy must send Check every request header: no allowed_headers list", "reason", needs[i].Why)
	}
}
