package rules

import (
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/interpreter"
)

// User is the signed-in user or API caller a rule sees as `user`. Each
// field's CEL name is its cel tag; a rule reads it as user.<name>.
type User struct {
	Sub               string              `cel:"sub"`
	Email             string              `cel:"email"`
	EmailVerified     bool                `cel:"email_verified"`
	Name              string              `cel:"name"`
	PreferredUsername string              `cel:"preferred_username"`
	Groups            []string            `cel:"groups"`    // group names and role keys
	Roles             map[string][]string `cel:"roles"`     // ZITADEL role key → ids of the organizations that granted it ([] when unknown)
	OrgID             string              `cel:"org_id"`    // the user's ZITADEL organization id
	AMR               []string            `cel:"amr"`       // authentication methods (RFC 8176: "pwd", "mfa", "otp", …)
	AuthTime          time.Time           `cel:"auth_time"` // zero when unknown (CEL: timestamp(0))
	Claims            map[string]string   `cel:"claims"`    // claim path → value, for the claim paths rules read (ClaimPaths)
	Via               string              `cel:"via"`       // "session" or "bearer"
	Scopes            []string            `cel:"scopes"`    // granted scopes (tokens; a session's scopes too)
}

// Request is the HTTP request a rule sees as `request`. Each field's CEL
// name is its cel tag; a rule reads it as request.<name>.
//
// SourceAddress has no port or zone, and an IPv4 address is in dotted form,
// never IPv4-mapped (netip.Addr.Unmap): cel-go's network extension refuses
// "::ffff:10.1.2.3", so cidr(…).containsIP would fail (and the caller deny).
type Request struct {
	Method        string            `cel:"method"`
	Scheme        string            `cel:"scheme"`
	Host          string            `cel:"host"`
	Path          string            `cel:"path"`           // without the query
	Query         map[string]string `cel:"query"`          // first value of each parameter
	Headers       map[string]string `cel:"headers"`        // lower-cased names
	SourceAddress string            `cel:"source_address"` // the client's IP address
}

// Input is one evaluation's inputs: user, request, route (the route's
// context_extensions) and now. A nil User or Request makes every rule that
// reads it fail (an error: the caller denies); a nil Route is an empty map.
// Now is the caller's clock (a zero Now is year 1, not the current time).
type Input struct {
	User    *User
	Request *Request
	Route   map[string]string
	Now     time.Time
}

// activation is an Input seen by the interpreter: converting *Input to
// *activation costs nothing, so an evaluation builds no map of variables
// (cel-go's map activation would allocate one per call). ResolveName
// returns the Go values as they are; cel-go's native-type adapter reads
// struct fields in place.
type activation Input

var _ interpreter.Activation = (*activation)(nil)

// ResolveName implements interpreter.Activation for the four inputs.
func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case varUser:
		if a.User == nil {
			return nil, false
		}
		return a.User, true
	case varRequest:
		if a.Request == nil {
			return nil, false
		}
		return a.Request, true
	case varRoute:
		return a.Route, true
	case varNow:
		return types.Timestamp{Time: a.Now}, true
	}
	return nil, false
}

// Parent implements interpreter.Activation: the inputs are the only scope.
func (a *activation) Parent() interpreter.Activation { return nil }
