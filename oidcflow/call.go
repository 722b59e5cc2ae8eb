package oidcflow

import (
	"context"
	"net/http"
)

// Names of the IdP calls, as CallName reports them (span names, logs).
const (
	CallDiscovery     = "discovery"
	CallJWKS          = "jwks"
	CallToken         = "token"
	CallRefresh       = "refresh"
	CallUserinfo      = "userinfo"
	CallIntrospection = "introspection"
	CallRevocation    = "revocation"
)

type callKey struct{}

func withCall(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, callKey{}, name)
}

// CallName says which IdP call an outgoing request of the Provider's HTTP
// client is (one of the Call* names), or "" for a request it didn't make.
// A transport wrapper (tracing) names its spans with it.
func CallName(r *http.Request) string {
	name, _ := r.Context().Value(callKey{}).(string)
	return name
}
