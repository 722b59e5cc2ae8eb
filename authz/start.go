package authz

import (
	"net/http"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/proto/sessionpb"
)

// start is /oauth2/start?rd=PATH: begin a login that returns to rd (same
// host or whitelist_domains only; anything else returns to "/").
func (s *Server) start(r *Request) *Decision {
	target, ok := s.returnURL(r, r.Query().Get("rd"))
	if !ok {
		target = r.Scheme + "://" + r.Host + "/"
	}
	return s.startLogin(r, target)
}

// redirectURI is the callback URL for this request: redirect_url itself
// when absolute, else resolved against the request's scheme and host.
func (s *Server) redirectURI(r *Request) string {
	if s.conf().redirectAbs {
		return s.conf().RedirectURL
	}
	return r.Scheme + "://" + r.Host + s.conf().RedirectURL
}

// startLogin redirects the browser to the IdP (Denied 302) with a fresh
// state, nonce and PKCE verifier kept in a state cookie of their own, so
// several tabs can log in at once.
func (s *Server) startLogin(r *Request, returnURL string) *Decision {
	login, err := s.idp.NewLogin()
	if err != nil {
		return s.errorPage(http.StatusInternalServerError, "random_failed", page{Title: "Sign-in unavailable", Message: "Could not start the sign-in. Try again."})
	}
	redirectURI := s.redirectURI(r)
	authURL, err := s.idp.AuthURL(login, redirectURI, nil)
	if err != nil {
		return s.unavailable(err, signInUnavailable)
	}
	now := s.now()
	ls := &sessionpb.LoginState{
		State:        login.State,
		Nonce:        login.Nonce,
		CodeVerifier: login.CodeVerifier,
		ReturnUrl:    returnURL,
		RedirectUri:  redirectURI,
		CreatedAt:    now.Unix(),
		ExpiresAt:    now.Add(s.jar.StateTTL()).Unix(),
	}
	cookies, err := s.jar.WriteState(ls, r.Host, r.Cookies)
	if err != nil {
		return s.errorPage(http.StatusInternalServerError, "state_cookie", page{Title: "Sign-in unavailable", Message: "Could not start the sign-in. Try again."})
	}
	return redirect(authURL, "login_redirect", cookies)
}
