// Package devidp is a development and test OpenID Provider: zitadel/oidc's
// own op package (the code ZITADEL builds on) with the example in-memory
// storage, wrapped as ../shared/zitadel.md §3.3 describes so it behaves like
// ZITADEL where it matters to us: ZITADEL-shaped project role claims under
// both claim names, registered post-logout redirect URIs, client ids with
// '@', opaque or JWT access tokens, and a username/password login form.
//
// Like ZITADEL it has organizations (OrgID, OtherOrgID) whose users it
// lets in only when the authorization request names their organization
// (urn:zitadel:iam:org:id:{id}), roles granted per organization, the
// urn:zitadel:iam:user:resourceowner claims when that scope is asked for,
// and users who sign in with a second factor (amr pwd, mfa, otp) or a
// password only (amr pwd). Every authorization request shows the login
// form (it keeps no sign-in session), so prompt=login and max_age are
// always honoured: auth_time is when the form was sent.
//
// It exchanges tokens (RFC 8693) as an app with ZITADEL's Token Exchange
// grant does, issuing JWTs for the requested audience, and can be made to
// refuse an audience (exchange.go).
//
// It also counts calls per endpoint and can be made to hang its token
// endpoint, for tests of the failure paths. It listens on 127.0.0.1 only.
// Product code never imports it.
package devidp
