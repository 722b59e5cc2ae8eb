package envoy

import (
	"errors"
	"strconv"
	"strings"
)

// VirtualHost is one more virtual host for envoy.yaml: its domains, routed
// to the echo cluster, with the app that judges them named in
// context_extensions (README "Many apps": how a user adds an app).
type VirtualHost struct {
	Name    string
	Domains []string
	App     string
}

// vhostAnchor is the line of envoy.yaml's app1 virtual host, before which
// the others go (Envoy matches exact domains first anyway; the order only
// keeps the catch-all last).
const vhostAnchor = "            - name: app1\n"

// WithVirtualHosts is envoy.yaml as shipped with hosts added before its
// app1 virtual host (tests and make bench use it).
func WithVirtualHosts(hosts ...VirtualHost) ([]byte, error) {
	shipped := string(Config)
	if !strings.Contains(shipped, vhostAnchor) {
		return nil, errors.New("envoy.yaml: no app1 virtual host to insert before")
	}
	var b strings.Builder
	for _, h := range hosts {
		quoted := make([]string, len(h.Domains))
		for i, d := range h.Domains {
			quoted[i] = strconv.Quote(d)
		}
		b.WriteString("            - name: " + h.Name + "\n" +
			"              domains: [" + strings.Join(quoted, ", ") + "]\n" +
			"              typed_per_filter_config:\n" +
			"                envoy.filters.http.ext_authz:\n" +
			"                  \"@type\": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute\n" +
			"                  check_settings:\n" +
			"                    context_extensions:\n" +
			"                      app: " + h.App + "\n" +
			"              routes:\n" +
			"              - match: { prefix: \"/\" }\n" +
			"                route: { cluster: echo }\n")
	}
	return []byte(strings.Replace(shipped, vhostAnchor, b.String()+vhostAnchor, 1)), nil
}
