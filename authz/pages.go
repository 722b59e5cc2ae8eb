package authz

import (
	"bytes"
	"html/template"
	"net/http"
	"net/url"
)

// pageHeaders go on every HTML page we answer with: no framing, no caching,
// no script, no referrer.
var pageHeaders = []Header{
	{"content-type", "text/html; charset=utf-8"},
	{"cache-control", "no-store"},
	{"content-security-policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"},
	{"x-frame-options", "DENY"},
	{"x-content-type-options", "nosniff"},
	{"referrer-policy", "no-referrer"},
}

var pages = template.Must(template.New("pages").Parse(`
{{define "head"}}<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;display:flex;align-items:center;justify-content:center;min-height:90vh;background:#f6f7f9;margin:0}
main{background:#fff;padding:2rem 2.5rem;border-radius:8px;box-shadow:0 1px 4px rgba(0,0,0,.15);max-width:28rem;text-align:center}
a.button{display:inline-block;margin-top:1rem;padding:.7rem 1.4rem;background:#3b4eff;color:#fff;border-radius:6px;text-decoration:none;font-weight:600}
p.detail{color:#666;font-size:.9rem}</style></head><body><main>{{end}}
{{define "signin"}}{{template "head" .}}
<h1>Sign in</h1>
<p>You need to sign in to continue.</p>
<a class="button" id="sign-in" href="{{.StartURL}}">Sign in with {{.Provider}}</a>
</main></body></html>{{end}}
{{define "error"}}{{template "head" .}}
<h1>{{.Title}}</h1>
<p>{{.Message}}</p>
{{if .Detail}}<p class="detail">{{.Detail}}</p>{{end}}
{{if .StartURL}}<a class="button" href="{{.StartURL}}">Sign in again</a>{{end}}
</main></body></html>{{end}}
`))

type pageData struct {
	Title, Message, Detail, Provider, StartURL string
}

func render(name string, data pageData) string {
	var b bytes.Buffer
	if err := pages.ExecuteTemplate(&b, name, data); err != nil {
		return data.Title
	}
	return b.String()
}

// signInPage is the "Sign in with <provider>" page (skip_provider_button =
// false): a local reply with status 200 linking to /oauth2/start?rd=.
func (s *Server) signInPage(r *Request, rd string) *Decision {
	if _, ok := s.returnURL(r, rd); !ok {
		rd = "/"
	}
	return &Decision{
		Status:  http.StatusOK,
		Reason:  "sign_in_page",
		Headers: pageHeaders, // never appended to
		Body:    render("signin", pageData{Title: "Sign in", Provider: s.conf().ProviderDisplayName, StartURL: pathStart + "?rd=" + url.QueryEscape(rd)}),
	}
}
