package config

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// def is key name's table entry; it must exist and be of kind want (a
// mistake here is the program's, caught by the tests that build every key).
func def(name string, want kind) key {
	k, ok := lookup(name)
	if !ok {
		panic("config: no key " + name)
	}
	if k.kind != want {
		panic(fmt.Sprintf("config: key %s is of kind %d, read as %d", name, k.kind, want))
	}
	return k
}

// value reads key name of kind want: its default when it is set nowhere,
// else what parse makes of the raw value.
func value[T any](r *resolver, name string, want kind, parse func(v any) T) T {
	k := def(name, want)
	v, ok := r.raw(name)
	if !ok {
		return r.defaultOf(k).(T)
	}
	return parse(v)
}

// defaultOf is key k's default. The table's, except for a default under
// proxy_prefix (redirect_url's), which follows a proxy_prefix that is set
// as oauth2-proxy's does; the table shows it under proxy_prefix's default.
func (r *resolver) defaultOf(k key) any {
	if p, ok := k.def.(underPrefix); ok {
		return r.str("proxy_prefix") + string(p)
	}
	return k.def
}

// values is the effective value of each named key as text: its own or its
// default. Reload diffs and check-config read them.
func (r *resolver) values(names []string) map[string]string {
	out := make(map[string]string, len(names))
	for _, name := range names {
		v, ok := r.raw(name)
		if !ok {
			k, _ := lookup(name) // names come from the table
			v = r.defaultOf(k)
		}
		out[name] = fmt.Sprint(v)
	}
	return out
}

func (r *resolver) str(name string) string {
	return value(r, name, kString, func(v any) string {
		switch t := v.(type) {
		case string:
			return strings.TrimSpace(t)
		case []any, map[string]any:
			r.fail(name, "want a string")
			return ""
		}
		return fmt.Sprint(v)
	})
}

func (r *resolver) boolean(name string) bool {
	return value(r, name, kBool, func(v any) bool { return r.parseBool(name, v) })
}

func (r *resolver) parseBool(name string, v any) bool {
	switch t := v.(type) {
	case bool:
		return t
	case string:
		b, err := strconv.ParseBool(strings.TrimSpace(t))
		if err != nil {
			r.fail(name, "want true or false, got %q", t)
		}
		return b
	}
	r.fail(name, "want true or false")
	return false
}

func (r *resolver) list(name string) []string {
	def(name, kList)
	v, ok := r.raw(name)
	if !ok {
		return nil
	}
	out, ok := toStrings(v)
	if !ok {
		r.fail(name, "want a list of strings")
	}
	return out
}

// toStrings reads a list value: a list of strings, or one string of
// comma-separated entries (environment variables, flags).
func toStrings(v any) ([]string, bool) {
	var out []string
	switch t := v.(type) {
	case string:
		for _, s := range strings.Split(t, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	case []string:
		out = t
	case []any:
		for _, e := range t {
			s, ok := e.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
	default:
		return nil, false
	}
	return out, true
}

func (r *resolver) duration(name string) time.Duration {
	v, ok := r.raw(name)
	s := def(name, kDuration).def.(string)
	if ok {
		s = strings.TrimSpace(fmt.Sprint(v))
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		r.fail(name, "want a duration such as 168h, 5m or 30s, got %q", s)
	}
	return d
}

// positiveDuration reads a duration that must be above 0: the parts it
// configures have no "off", and 0 must not quietly mean the default.
func (r *resolver) positiveDuration(name string) time.Duration {
	d := r.duration(name)
	if d == 0 {
		r.fail(name, "want a duration above 0 (default %s), got 0", def(name, kDuration).def.(string))
	}
	return d
}

func (r *resolver) integer(name string) int64 {
	return value(r, name, kInt, func(v any) int64 {
		n, err := strconv.ParseInt(strings.TrimSpace(fmt.Sprint(v)), 10, 64)
		if err != nil || n < 0 {
			r.fail(name, "want a non-negative whole number, got %v", v)
		}
		return n
	})
}

// float reads a number within [lo, hi].
func (r *resolver) float(name string, lo, hi float64) float64 {
	return value(r, name, kFloat, func(v any) float64 {
		f, err := strconv.ParseFloat(strings.TrimSpace(fmt.Sprint(v)), 64)
		if err != nil || f < lo || f > hi {
			r.fail(name, "want a number from %g to %g, got %v", lo, hi, v)
		}
		return f
	})
}

// address reads a host:port key.
func (r *resolver) address(name string) string {
	a := r.str(name)
	if _, _, err := net.SplitHostPort(a); err != nil {
		r.fail(name, "%q is not host:port (e.g. 0.0.0.0:9001)", a)
	}
	return a
}

func isMethod(s string) bool {
	switch strings.ToUpper(s) {
	case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE":
		return true
	}
	return false
}

func validCookieName(n string) bool {
	if n == "" {
		return false
	}
	c := http.Cookie{Name: n, Value: "x"}
	return c.Valid() == nil
}
