package rules

import (
	"sync/atomic"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
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
//
// Memo, when not nil, is User's memo (Set.Memo): the rules of the Set
// that made it then read user from it, working out what they read of
// user once per memo, not per evaluation. A memo of another User (by
// pointer) or another Set is ignored.
type Input struct {
	User    *User
	Request *Request
	Route   map[string]string
	Now     time.Time
	Memo    *UserMemo
}

// UserMemo is a User with the values of the Set's lifted subexpressions
// of user (hoist.go), each worked out on first use and kept. A caller that
// sees the user again keeps it (a cached session keeps it with its
// identity block), so a rule evaluated there builds nothing for user.
// Safe for concurrent use; its User must not change after Set.Memo.
type UserMemo struct {
	user *User
	set  *Set
	vals []atomic.Pointer[ref.Val]
	// within: every field of user a rule of set reads is within its size
	// bound (bounds.go), so the lifted rules may run.
	within bool
}

// Memo is u's memo for the rules of s (nil s or u: nil). It costs a
// check of u's sizes, and nothing per lifted subexpression until a rule
// reads it.
func (s *Set) Memo(u *User) *UserMemo {
	if s == nil || u == nil {
		return nil
	}
	return &UserMemo{user: u, set: s, vals: make([]atomic.Pointer[ref.Val], len(s.lifts)),
		within: within(&Input{User: u}, s.userSized)}
}

// User is the User m is the memo of.
func (m *UserMemo) User() *User { return m.user }

// value is lifted subexpression i of m's user, worked out on first use.
// Goroutines that ask at once may each work it out; the values are the
// same (CEL has no side effects), and one is kept.
func (m *UserMemo) value(i int) ref.Val {
	slot := &m.vals[i]
	if v := slot.Load(); v != nil {
		return *v
	}
	out, _, err := m.set.lifts[i].Eval((*userActivation)(m.user))
	if out == nil { // a panic in a function, recovered by cel-go
		out = types.WrapErr(err)
	}
	slot.Store(&out)
	return out
}

// memoFor is in's memo when s made it for in's User, else nil.
func (s *Set) memoFor(in *Input) *UserMemo {
	if m := in.Memo; m != nil && m.set == s && m.user == in.User {
		return m
	}
	return nil
}

// activation is an Input seen by the interpreter: converting *Input to
// *activation costs nothing, so an evaluation builds no map of variables
// (cel-go's map activation would allocate one per call). ResolveName
// returns the Go values as they are; cel-go's native-type adapter reads
// struct fields in place. A lifted rule's variables (@u0, …) come from
// the memo.
type activation Input

var _ interpreter.Activation = (*activation)(nil)

// ResolveName implements interpreter.Activation for the four inputs and
// the lifted subexpressions.
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
	if i, ok := memoIndex(name); ok && a.Memo != nil && i < len(a.Memo.vals) {
		return a.Memo.value(i), true
	}
	return nil, false
}

// Parent implements interpreter.Activation: the inputs are the only scope.
func (a *activation) Parent() interpreter.Activation { return nil }

// userActivation is a User alone, for a lifted subexpression.
type userActivation User

// ResolveName implements interpreter.Activation.
func (a *userActivation) ResolveName(name string) (any, bool) {
	if name == varUser {
		return (*User)(a), true
	}
	return nil, false
}

// Parent implements interpreter.Activation.
func (a *userActivation) Parent() interpreter.Activation { return nil }
