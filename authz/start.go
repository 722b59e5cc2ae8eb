package authz

import (
	"net/url"
	"strconv"

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
	return s.login(r, returnURL, s.loginParams(), nil)
}

// loginParams are prompt and acr_values for every authorization request
// (oauth2-proxy's prompt, approval_prompt and acr_values); nil when none.
func (s *Server) loginParams() url.Values {
	set := s.conf()
	if set.Prompt == "" && set.ACRValues == "" {
		return nil
	}
	v := url.Values{}
	if set.Prompt != "" {
		v.Set("prompt", set.Prompt)
	}
	if set.ACRValues != "" {
		v.Set("acr_values", set.ACRValues)
	}
	return v
}

// startStepUp sends a signed-in user back to the IdP for the sign-in the
// route wants (need: "max_age" or "amr"): prompt=login, with max_age or
// step_up_acr_values; the callback checks that the new ID token has it.
// The user comes back to the same URL; the new session replaces the old.
func (s *Server) startStepUp(r *Request, rp routePolicy, need string) *Decision {
	extra := url.Values{"prompt": {"login"}}
	if acr := s.conf().ACRValues; acr != "" {
		extra.Set("acr_values", acr)
	}
	ls := &sessionpb.LoginState{}
	if rp.maxAge >= 0 {
		extra.Set("max_age", strconv.FormatInt(rp.maxAge, 10))
		ls.MaxAge = max(rp.maxAge, 1) // 0 means "none" in the state
	}
	if need == "amr" || len(rp.amr) > 0 {
		ls.RequiredAmr = rp.amr
		if acr := s.conf().StepUpACRValues; acr != "" {
			extra.Set("acr_values", acr)
		}
	}
	// Say why before sending the user back to the IdP: a page with the
	// login already prepared (its state cookie set) and a button to it.
	authURL, cookies, failed := s.prepareLogin(r, r.URL(), extra, ls)
	if failed != nil {
		return failed
	}
	return s.stepUpPage(need, rp, authURL, cookies)
}

// login redirects to the IdP with extra authorization parameters; step
// (may be nil) carries a step-up's requirements into the state cookie.
func (s *Server) login(r *Request, returnURL string, extra url.Values, step *sessionpb.LoginState) *Decision {
	authURL, cookies, failed := s.prepareLogin(r, returnURL, extra, step)
	if failed != nil {
		return failed
	}
	return redirect(authURL, ReasonLoginRedirect, cookies)
}

// prepareLogin makes a sign-in at the IdP ready to follow: its URL and the
// state cookie that the callback will check; failed is the answer when it
// can't start.
func (s *Server) prepareLogin(r *Request, returnURL string, extra url.Values, step *sessionpb.LoginState) (authURL string, cookies []string, failed *Decision) {
	login, err := s.idp.NewLogin()
	if err != nil {
		return "", nil, s.deny(ReasonRandomFailed)
	}
	redirectURI := s.redirectURI(r)
	authURL, err = s.idp.AuthURL(login, redirectURI, extra)
	if err != nil {
		return "", nil, s.unavailable(err, signInUnavailable)
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
		MaxAge:       step.GetMaxAge(),
		RequiredAmr:  step.GetRequiredAmr(),
	}
	cookies, err = s.jar.WriteState(ls, r.Host, r.Cookies)
	if err != nil {
		return "", nil, s.deny(ReasonStateCookie)
	}
	return authURL, cookies, nil
}
