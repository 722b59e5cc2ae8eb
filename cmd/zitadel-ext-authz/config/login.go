package config

import (
	"encoding/base64"
	"html/template"
	"mime"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz"
)

// buildLogin: what the login flow sends and shows, as oauth2-proxy's keys
// of the same names say (prompt, approval_prompt, acr_values,
// proxy_prefix and redirect_url, backend_logout_url, session_cookie_minimal,
// cookie_csrf_expire and the sign-in page's banner, footer, logo and
// templates).
func (r *resolver) buildLogin(c *Config) {
	a := &c.Authz
	a.Prompt, a.ACRValues = r.str("prompt"), r.str("acr_values")
	switch ap := strings.ToLower(r.str("approval_prompt")); ap {
	case "", "auto":
	case "force":
		if a.Prompt == "" {
			a.Prompt = "consent"
		}
	default:
		r.fail("approval_prompt", "want force or auto, got %q (or set prompt)", ap)
	}
	if strings.ContainsAny(a.Prompt+a.ACRValues, "\"\\&#") {
		r.fail("prompt", "prompt and acr_values: no quotes, backslashes, & or #")
	}
	a.ProxyPrefix = r.str("proxy_prefix")
	if p := a.ProxyPrefix; p == "" || p[0] != '/' || strings.HasSuffix(p, "/") || strings.ContainsAny(p, "?#") {
		r.fail("proxy_prefix", "want a path such as /oauth2 (a leading slash, none at the end), got %q", p)
	}
	// Unset, redirect_url is the callback under proxy_prefix (defaultOf):
	// authz never has to default it.
	a.RedirectURL = r.str("redirect_url")
	if u, err := url.Parse(a.RedirectURL); err != nil || (u.IsAbs() && u.Host == "") || u.Path == "" || u.Path[0] != '/' {
		r.fail("redirect_url", "%q is neither an absolute URL nor a path such as /oauth2/callback", a.RedirectURL)
	}
	if u := r.str("backend_logout_url"); u != "" {
		if pu, err := url.Parse(strings.ReplaceAll(u, "{id_token}", "x")); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			r.fail("backend_logout_url", "%q is not an http(s) URL", u)
		}
		a.BackendLogoutURL = u
	}
	if r.boolean("session_cookie_minimal") {
		switch {
		case r.str("session_store_type") == "redis":
			r.warnings = append(r.warnings, r.where+"session_cookie_minimal: no effect with session_store_type = \"redis\" (cookies carry only a ticket)")
		case r.boolean("pass_access_token") || r.boolean("pass_authorization_header") || r.boolean("set_xauthrequest") && r.boolean("pass_access_token"):
			r.fail("session_cookie_minimal", "keeps no tokens: it can't be combined with pass_access_token or pass_authorization_header")
		case r.duration("cookie_refresh") > 0:
			r.fail("session_cookie_minimal", "keeps no refresh token: it can't be combined with cookie_refresh")
		case strings.Contains(a.BackendLogoutURL, "{id_token}"):
			// oauth2-proxy skips the call silently then; a sign-out that
			// quietly leaves the backend's session alive is worse.
			r.fail("session_cookie_minimal", "keeps no ID token, so backend_logout_url's {id_token} would be empty and the backend session would stay: drop one of them")
		default:
			a.SessionCookieMinimal = true
		}
	}
	c.Cookie.StateTTL = r.duration("cookie_csrf_expire")
	if c.Cookie.StateTTL <= 0 {
		r.fail("cookie_csrf_expire", "must be greater than 0 (how long a login may take, e.g. 15m)")
	}
	a.Pages = r.pages()
}

// pages reads banner, footer, custom_sign_in_logo and custom_templates_dir;
// nil when none is set.
func (r *resolver) pages() *authz.Pages {
	banner, footer, logo, dir := r.str("banner"), r.str("footer"), r.str("custom_sign_in_logo"), r.str("custom_templates_dir")
	if banner == "" && footer == "" && logo == "" && dir == "" {
		return nil
	}
	p := &authz.Pages{}
	// "-" hides oauth2-proxy's default banner and footer; ours has none.
	if banner != "-" {
		p.Banner = template.HTML(banner)
	}
	if footer != "-" {
		p.Footer = template.HTML(footer)
	}
	switch {
	case logo == "" || logo == "-":
	case strings.HasPrefix(logo, "https://"):
		u, err := url.Parse(logo)
		if err != nil || u.Host == "" {
			r.fail("custom_sign_in_logo", "%q is not an https URL", logo)
			break
		}
		p.Logo, p.ImageSource = template.URL(logo), "https://"+u.Host
	default:
		data, err := os.ReadFile(logo)
		if err != nil {
			r.fail("custom_sign_in_logo", "%v (a file path, an https URL or -)", err)
			break
		}
		typ := mime.TypeByExtension(filepath.Ext(logo))
		if !strings.HasPrefix(typ, "image/") {
			r.fail("custom_sign_in_logo", "%s is not an image (.png, .svg, .jpg, …)", logo)
			break
		}
		// Embedded: the page's CSP allows data: images only.
		p.Logo, p.ImageSource = template.URL("data:"+typ+";base64,"+base64.StdEncoding.EncodeToString(data)), "data:"
	}
	if dir != "" {
		t := template.New("custom")
		found := false
		for _, name := range []string{"sign_in.html", "error.html"} {
			data, err := os.ReadFile(filepath.Join(dir, name))
			if os.IsNotExist(err) {
				continue
			}
			if err != nil {
				r.fail("custom_templates_dir", "%v", err)
				return p
			}
			if _, err := t.New(name).Parse(string(data)); err != nil {
				r.fail("custom_templates_dir", "%s: %v", name, err)
				return p
			}
			found = true
		}
		if !found {
			r.fail("custom_templates_dir", "%s has neither sign_in.html nor error.html", dir)
		}
		p.Templates = t
	}
	return p
}
