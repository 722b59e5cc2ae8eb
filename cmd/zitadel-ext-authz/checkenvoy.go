package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/cmd/zitadel-ext-authz/config"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/envoy"
)

// check-envoy reads the route keys (check_settings.context_extensions) of
// deployment files, which check-config can't see: an unknown key or a value
// the server can't read makes every request of that route a 500, so it is
// found before deploying. With --config, a route's allow_if and deny_if
// must name rules of its app, and ignored_route_keys are let be. It also
// holds every list of the request headers the proxy sends to Check
// (allowed_headers, headersToExtAuth, includeRequestHeadersInCheck) to the
// headers the configuration reads (checkheaders.go): one left out fails
// quietly in production.

const checkEnvoyUsage = `usage: zitadel-ext-authz check-envoy [--config FILE] FILE...

FILE: an Envoy bootstrap (envoy/envoy.yaml), Istio or Envoy Gateway
manifests, or a rendered Helm chart (helm template … | check-envoy -);
"-" reads stdin. --envoy FILE is the same as FILE.
--config FILE: the server's configuration: ignored_route_keys, the
rules allow_if and deny_if may name, and the request headers it reads,
which an allowed_headers (Envoy Gateway: headersToExtAuth) list must
send to Check; without it, the headers the default configuration reads.

Exit 0 when every route key is known and readable and every header list
sends what the configuration reads, 1 when not, 2 when a file or the
configuration can't be read.
`

func checkEnvoy(args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check-envoy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, checkEnvoyUsage) }
	cfgPath := fs.String("config", "", "the server's configuration file")
	var files listFlag
	fs.Var(&files, "envoy", "a file to check (repeatable)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	files = append(files, fs.Args()...)
	if len(files) == 0 {
		fmt.Fprint(stderr, "check-envoy: no file given\n"+checkEnvoyUsage)
		return 2
	}
	var cfg *config.Config
	if *cfgPath != "" {
		c, _, err := config.Load([]string{"--config", *cfgPath}, getenv)
		if err != nil {
			fmt.Fprintf(stderr, "check-envoy: %v\n", err)
			return 2
		}
		cfg = c
	}
	needs := defaultHeaderNeeds()
	if cfg != nil {
		needs = cfg.RequestHeaders()
	} else {
		fmt.Fprintln(stdout, "# no --config: header lists are held to what the default configuration reads")
	}
	data := make([][]byte, len(files))
	underscores := false // an Envoy Gateway ClientTrafficPolicy among them lets '_' through
	for i, f := range files {
		var err error
		if data[i], err = readInput(f, stdin); err != nil {
			fmt.Fprintf(stderr, "check-envoy: %v\n", err)
			return 2
		}
		underscores = underscores || envoy.UnderscoresAllowed(data[i])
	}
	code := 0
	for i, f := range files {
		code = max(code, checkEnvoyFile(f, data[i], cfg, needs, underscores, stdout, stderr))
	}
	return code
}

// readInput reads a file, or stdin for "-".
func readInput(name string, stdin io.Reader) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(stdin)
	}
	return os.ReadFile(name)
}

// checkEnvoyFile reports the problems of one file: 0 none, 1 some, 2 the
// file can't be read. needs are the request headers Check reads;
// underscores: another file lets headers with '_' through Envoy Gateway.
func checkEnvoyFile(name string, data []byte, cfg *config.Config, needs []authz.HeaderNeed, underscores bool, stdout, stderr io.Writer) int {
	settings, err := envoy.RouteSettings(data)
	if err != nil {
		fmt.Fprintf(stderr, "check-envoy: %s: %v\n", name, err)
		return 2
	}
	lists, err := envoy.HeaderLists(data)
	if err != nil {
		fmt.Fprintf(stderr, "check-envoy: %s: %v\n", name, err)
		return 2
	}
	for i := range lists {
		if underscores && lists[i].Key == "headersToExtAuth" {
			lists[i].UnderscoresRefused = false
		}
	}
	return max(checkRouteSettings(name, settings, cfg, stdout), checkHeaderLists(name, lists, needs, stdout))
}

// checkRouteSettings reports the problems of a file's route settings: 0
// none, 1 some.
func checkRouteSettings(name string, settings []envoy.RouteSetting, cfg *config.Config, stdout io.Writer) int {
	problems := 0
	for _, s := range settings {
		for _, p := range routeProblems(s.Extensions, cfg) {
			problems++
			fmt.Fprintf(stdout, "%s: document %d: %s: %s\n", name, s.Doc, s.Where, p)
		}
	}
	if problems > 0 {
		fmt.Fprintf(stdout, "%s: %d problem(s) in %d route setting(s): every request of such a route gets a 500\n", name, problems, len(settings))
		return 1
	}
	fmt.Fprintf(stdout, "%s: %d route setting(s), every key known and readable\n", name, len(settings))
	return 0
}

// routeProblems are ext's problems: its keys and values, and with cfg the
// rules it names (in its app: the route's app key, else any app).
func routeProblems(ext map[string]string, cfg *config.Config) []string {
	var ignored []string
	var apps []*config.App
	if cfg != nil {
		apps = cfg.AllApps()
		if name := ext[authz.AppRouteKey]; name != "" {
			apps = slices.DeleteFunc(apps, func(a *config.App) bool { return a.Name != name })
			if len(apps) == 0 {
				return []string{fmt.Sprintf("app: %q is no app of the configuration", name)}
			}
		}
		for _, a := range apps {
			ignored = append(ignored, a.Authz.IgnoredRouteKeys...)
		}
	}
	var out []string
	for _, p := range authz.CheckRouteKeys(ext, ignored) {
		out = append(out, p.String())
	}
	for _, key := range []string{"deny_if", "allow_if"} {
		for _, rule := range authz.RuleNames(ext[key]) {
			if cfg != nil && !slices.ContainsFunc(apps, func(a *config.App) bool { return a.Authz.Rules.Has(rule) }) {
				out = append(out, fmt.Sprintf("%s: rule %q is not defined in the configuration", key, rule))
			}
		}
	}
	return out
}
