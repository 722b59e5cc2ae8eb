package integration_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/devidp"
)

// The shipped alerting rules and Grafana dashboard (envoy/monitoring/)
// parse as Prometheus and Grafana read them, and name only metrics a
// running server exports.

var promql = parser.NewParser(parser.Options{})

// exportedMetrics are the series names a server's /metrics has after a
// login, a refresh, a bearer call and a denied request.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	st := startStack(t, stackOptions{
		config:  map[string]any{"skip_jwt_bearer_tokens": true, "extra_jwt_audiences": []string{jwtClient.ID}, "cookie_refresh": "1ms"},
		clients: []devidp.Client{devidp.DefaultClient(), jwtClient},
	})
	alice := newBrowser(t, "alice", "alice-password")
	upstreamSaw(t, st.login(t, alice, "/"))
	upstreamSaw(t, alice.get(st.Front.URL+"/refreshes")) // cookie_refresh 1 ms: a refresh
	if r := apiCall(t, st, "/data", st.accessToken(t, jwtClient, "alice")); r.StatusCode != http.StatusOK {
		t.Fatalf("bearer call: %s", describe(r))
	}
	names := map[string]bool{"up": true} // Prometheus's own, per target
	for _, line := range strings.Split(scrape(t, st.Server), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, _, _ := strings.Cut(line, "{")
		name, _, _ = strings.Cut(name, " ")
		names[name] = true
	}
	return names
}

// selectors are the metric names an expression reads.
func selectors(expr string) ([]string, error) {
	e, err := promql.ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	var out []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			out = append(out, vs.Name)
		}
		return nil
	})
	return out, nil
}

// checkExprs parses each expression and reports names not exported.
func checkExprs(exprs map[string]string, exported map[string]bool) error {
	var errs []error
	for where, expr := range exprs {
		names, err := selectors(expr)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
			continue
		}
		for _, n := range names {
			if !exported[n] {
				errs = append(errs, fmt.Errorf("%s: metric %q is not exported", where, n))
			}
		}
	}
	return errors.Join(errs...)
}

// alertExprs parses a rule file as Prometheus does (unknown fields refused).
func alertExprs(data []byte) (map[string]string, error) {
	groups, errs := rulefmt.Parse(data, false, model.UTF8Validation, promql, slog.New(slog.DiscardHandler))
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	out := map[string]string{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Annotations["summary"] == "" {
				return nil, fmt.Errorf("group %s: every rule is an alert with a summary", g.Name)
			}
			out["alert "+r.Alert] = r.Expr
		}
	}
	return out, nil
}

// dashboardExprs reads a Grafana dashboard's panel queries, with Grafana's
// variables replaced by what they stand for.
func dashboardExprs(data []byte) (map[string]string, error) {
	var d struct {
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(&d); err != nil {
		return nil, err
	}
	if d.UID == "" || len(d.Panels) == 0 {
		return nil, errors.New("not a dashboard: no uid or no panels")
	}
	vars := strings.NewReplacer("$__rate_interval", "5m", `"$app"`, `".*"`)
	out := map[string]string{}
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			return nil, fmt.Errorf("panel %q has no query", p.Title)
		}
		for i, t := range p.Targets {
			out[fmt.Sprintf("panel %q query %d", p.Title, i)] = vars.Replace(t.Expr)
		}
	}
	return out, nil
}

func TestAlertsAndDashboardNameExportedMetrics(t *testing.T) {
	exported := exportedMetrics(t)
	rules, err := os.ReadFile("../envoy/monitoring/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dashboard, err := os.ReadFile("../envoy/monitoring/dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	check := func(rules, dashboard []byte) error {
		a, err := alertExprs(rules)
		if err != nil {
			return err
		}
		d, err := dashboardExprs(dashboard)
		if err != nil {
			return err
		}
		return errors.Join(checkExprs(a, exported), checkExprs(d, exported))
	}
	if err := check(rules, dashboard); err != nil {
		t.Fatal(err)
	}
	a, _ := alertExprs(rules)
	d, _ := dashboardExprs(dashboard)
	for _, want := range []string{"ZitadelExtAuthzIdPErrors", "ZitadelExtAuthzServerErrors", "ZitadelExtAuthzSlowChecks", "ZitadelExtAuthzNotReady", "ZitadelExtAuthzReloadRefused"} {
		if _, ok := a["alert "+want]; !ok {
			t.Errorf("no alert %s", want)
		}
	}
	if len(d) < 10 {
		t.Errorf("dashboard has %d queries", len(d))
	}

	// Broken copies fail.
	for _, tc := range []struct {
		rules bool
		old   string
		new   string
	}{
		{true, "zitadel_ext_authz_ready", "zitadel_ext_authz_readiness"},                           // not exported
		{true, "[5m])) > 0.05", "[5m]) > 0.05"},                                                    // PromQL syntax
		{true, "for: 10m", "for: ten minutes"},                                                     // rule file format
		{true, "labels: { severity: warning }", "label: { severity: warning }"},                    // unknown field
		{false, "zitadel_ext_authz_logins_started_total", "zitadel_ext_authz_login_started_total"}, // not exported
		{false, "histogram_quantile(0.99", "histogram_quantile((0.99"},                             // PromQL syntax
	} {
		r, dd := string(rules), string(dashboard)
		if tc.rules {
			r = strings.Replace(r, tc.old, tc.new, 1)
		} else {
			dd = strings.Replace(dd, tc.old, tc.new, 1)
		}
		if r == string(rules) && dd == string(dashboard) {
			t.Fatalf("test setup: %q not found", tc.old)
		}
		if err := check([]byte(r), []byte(dd)); err == nil {
			t.Errorf("a copy with %q instead of %q passed", tc.new, tc.old)
		}
	}
	if !exported["zitadel_ext_authz_refreshes_total"] {
		t.Error("test setup: no refresh happened")
	}
}
