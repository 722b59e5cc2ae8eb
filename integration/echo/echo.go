// Package echo is the upstream of the tests and the demo: it answers every
// request with the method, path and headers it received, as JSON for
// programs and as an HTML page for people (with the same JSON embedded), so
// anyone can see what Envoy and zitadel-ext-authz passed on.
package echo

import (
	"encoding/json"
	"html"
	"html/template"
	"net/http"
	"sort"
	"strings"
)

// Request is what the upstream received.
type Request struct {
	Method  string            `json:"method"`
	Path    string            `json:"path"`
	Headers map[string]string `json:"headers"` // lower-case names, repeated values joined with ", "
	// Assertion is the identity assertion as verified (with a Verifier).
	Assertion *Assertion `json:"assertion,omitempty"`
}

// Handler echoes requests.
func Handler() http.Handler { return Verifying(nil) }

// Verifying echoes requests and, with v, whether their identity assertion
// verifies.
func Verifying(v *Verifier) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := Request{Method: r.Method, Path: r.URL.RequestURI(), Headers: map[string]string{}}
		if v != nil {
			got.Assertion = v.check(r)
		}
		for k, v := range r.Header {
			got.Headers[strings.ToLower(k)] = strings.Join(v, ", ")
		}
		js, _ := json.Marshal(got)
		w.Header().Set("Cache-Control", "no-store")
		if !strings.Contains(r.Header.Get("Accept"), "text/html") {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(js)
			return
		}
		names := make([]string, 0, len(got.Headers))
		for k := range got.Headers {
			names = append(names, k)
		}
		sort.Strings(names)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		identity := map[string]bool{}
		for _, n := range names {
			identity[n] = isIdentityHeader(n)
		}
		if err := page.Execute(w, map[string]any{"R": got, "Names": names, "Identity": identity, "JSON": string(js)}); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
}

// isIdentityHeader: one of the headers zitadel-ext-authz sets (the
// x-forwarded-* and x-auth-request-* identity families), not the proxies' own x-forwarded-for, -proto, -host, -port or -prefix.
func isIdentityHeader(name string) bool {
	switch name {
	case "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port", "x-forwarded-prefix", "x-forwarded-client-cert":
		return false
	}
	return strings.HasPrefix(name, "x-forwarded-") || strings.HasPrefix(name, "x-auth-request-")
}

// Marker opens the (HTML-escaped) JSON copy inside the HTML page.
const Marker = `<pre id="echo-json" hidden>`

var page = template.Must(template.New("echo").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>echo: what the upstream received</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem}td{padding:.2rem .8rem;font-family:monospace;word-break:break-all}
tr.identity td{background:#e8f5e9;font-weight:bold}</style></head><body>
<h1>Hello{{with index .R.Headers "x-forwarded-preferred-username"}}, {{.}}{{end}}!</h1>
<p>{{.R.Method}} {{.R.Path}} reached the upstream with these headers (identity headers from zitadel-ext-authz highlighted):</p>
<table id="headers">{{range .Names}}<tr{{if index $.Identity .}} class="identity"{{end}}><td>{{.}}</td><td>{{index $.R.Headers .}}</td></tr>{{end}}</table>
<p><a href="/oauth2/sign_out">Sign out</a> · <a href="/oauth2/userinfo">/oauth2/userinfo</a></p>
` + Marker + `{{.JSON}}</pre>
</body></html>`))

// Parse reads a Request back from an echo response body (JSON or HTML).
func Parse(body []byte) (Request, error) {
	s := string(body)
	if i := strings.Index(s, Marker); i >= 0 {
		s = s[i+len(Marker):]
		if j := strings.Index(s, "</pre>"); j >= 0 {
			s = html.UnescapeString(s[:j])
		}
	}
	var r Request
	err := json.Unmarshal([]byte(s), &r)
	return r, err
}
