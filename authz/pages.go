package authz

import (
	"bytes"
	"html/template"
	"net/http"
	"net/url"
	"slices"
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
p.detail{color:#666;font-size:.9rem} img.logo{max-width:12rem;max-height:6rem} footer{margin-top:1.5rem;color:#666;font-size:.85rem}</style></head><body><main>{{end}}
{{define "signin"}}{{template "head" .}}
{{if .Logo}}<img class="logo" alt="" src="{{.Logo}}">{{end}}
<h1>Sign in</h1>
{{if .Message}}<p class="notice" id="notice">{{.Message}}</p>{{end}}
{{if .Banner}}<div class="banner">{{.Banner}}</div>{{else}}<p>You need to sign in to continue.</p>{{end}}
<a class="button" id="sign-in" href="{{.StartURL}}">Sign in with {{.Provider}}</a>
{{if .Footer}}<footer>{{.Footer}}</footer>{{end}}
</main></body></html>{{end}}
{{define "error"}}{{template "head" .}}
<h1>{{.Title}}</h1>
<p>{{.Message}}</p>
{{if .Detail}}<p class="detail">{{.Detail}}</p>{{end}}
{{if .NextURL}}<a class="button" id="next" href="{{.NextURL}}">{{.NextLabel}}</a>{{end}}
{{if .StartURL}}<a class="button" href="{{.StartURL}}">Sign in again</a>{{end}}
{{if .SignOutURL}}<a class="button" id="sign-out" href="{{.SignOutURL}}">Sign out or switch account</a>{{end}}
</main></body></html>{{end}}
`))

// pageData is what the pages (ours, or custom_templates_dir's
// sign_in.html and error.html) are rendered with.
type pageData struct {
	Title, Message, Detail, Provider, StartURL, SignOutURL string
	// NextURL is the way forward a page offers, labelled NextLabel.
	NextURL, NextLabel string
	// Banner and Footer (sign-in page) are the operator's HTML; Logo is a
	// data: or https URL.
	Banner, Footer template.HTML
	Logo           template.URL
}

// Pages customises our pages (oauth2-proxy's banner, footer,
// custom_sign_in_logo and custom_templates_dir); the operator's
// configuration, so its HTML is trusted.
type Pages struct {
	Banner, Footer template.HTML
	Logo           template.URL       // data:image/… or an https URL
	Templates      *template.Template // "sign_in.html" and/or "error.html", nil: ours
	// ImageSource is the logo's origin for the pages' CSP img-src.
	ImageSource string
}

// render executes page name ("signin" or "error"), the custom template
// when pages has one.
func render(pages *Pages, name string, data pageData) string {
	var b bytes.Buffer
	t, tname := defaultPages, name
	if pages != nil {
		data.Banner, data.Footer, data.Logo = pages.Banner, pages.Footer, pages.Logo
		custom := map[string]string{"signin": "sign_in.html", "error": "error.html"}[name]
		if pages.Templates != nil && pages.Templates.Lookup(custom) != nil {
			t, tname = pages.Templates, custom
		}
	}
	if err := t.ExecuteTemplate(&b, tname, data); err != nil {
		return data.Title
	}
	return b.String()
}

var defaultPages = pages

// pageHeadersFor are pageHeaders with the logo's origin allowed as an
// image source.
func pageHeadersFor(pages *Pages) []Header {
	if pages == nil || pages.Logo == "" {
		return pageHeaders
	}
	out := slices.Clone(pageHeaders)
	for i, h := range out {
		if h.Name == "content-security-policy" {
			out[i].Value = h.Value + "; img-src " + pages.ImageSource
		}
	}
	return out
}

// signInPage is the "Sign in with <provider>" page (skip_provider_button =
// false): a local reply with status 200 linking to PREFIX/start?rd=.
func (s *Server) signInPage(r *Request, rd string) *Decision {
	if _, ok := s.returnURL(r, rd); !ok {
		rd = "/"
	}
	set := s.conf()
	return &Decision{
		Status:  http.StatusOK,
		Reason:  ReasonSignInPage,
		Headers: set.pageHeaders, // never appended to
		Body:    render(set.Pages, "signin", pageData{Title: "Sign in", Provider: set.ProviderDisplayName, StartURL: set.paths.start + "?rd=" + url.QueryEscape(rd)}),
	}
}

// signedOutPage says the sign-out is done and offers to sign in again
// (status 200), rather than sending the browser straight back to the IdP.
func (s *Server) signedOutPage() *Decision {
	set := s.conf()
	return &Decision{Status: http.StatusOK, Reason: ReasonSignedOutPage, Headers: set.pageHeaders, // never appended to
		Body: render(set.Pages, "signin", pageData{Title: "Signed out", Message: "You are signed out.", Provider: set.ProviderDisplayName,
			StartURL: set.paths.start + "?rd=%2F"})}
}
