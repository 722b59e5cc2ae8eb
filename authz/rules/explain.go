package rules

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Explanation is Explain's answer.
type Explanation struct {
	Rule   string
	Source string
	Inputs []Field // the fields the rule reads, in order of first use in the source
	Result bool
	Err    error // nil, or why it could not be evaluated (the caller denies)
}

// Field is one input a rule reads and its value.
type Field struct{ Name, Value string }

// Explain evaluates rule name on in and says what it read: each input
// field the rule references (e.g. "user.roles", "request.path") with its
// value rendered as short text, and the result or the error.
//
// A map read by a constant key is listed by that key
// (`request.headers["x-team"]`, "<absent>" when missing). Values are cut
// at about 200 characters, and the values of the authorization, cookie and
// proxy-authorization headers are never shown.
func (s *Set) Explain(name string, in *Input) Explanation {
	r := s.rule(name)
	if r == nil {
		return Explanation{Rule: name, Err: fmt.Errorf("rule %s: %w", name, ErrUnknownRule)}
	}
	x := Explanation{Rule: name, Source: r.source}
	x.Result, x.Err = r.eval(in)
	for _, f := range r.refs.fields {
		x.Inputs = append(x.Inputs, Field{Name: f.name, Value: renderInput(in, f)})
	}
	return x
}

// maxValue bounds a rendered value, in runes.
const maxValue = 200

// secretHeader reports whether Explain never shows the value of request
// header name (credentials).
func secretHeader(name string) bool {
	switch name {
	case "authorization", "proxy-authorization", "cookie":
		return true
	}
	return false
}

// renderInput renders the value of f in in.
func renderInput(in *Input, f fieldRef) string {
	if in == nil {
		return "<no input>"
	}
	var v reflect.Value
	switch f.v {
	case varUser:
		if in.User == nil {
			return "<no user>"
		}
		v = celField(reflect.ValueOf(in.User).Elem(), f.field)
	case varRequest:
		if in.Request == nil {
			return "<no request>"
		}
		v = reflect.ValueOf(in.Request).Elem()
		if f.field != "" {
			v = celField(v, f.field)
		}
	case varRoute:
		v = reflect.ValueOf(in.Route)
	case varNow:
		v = reflect.ValueOf(in.Now)
	}
	secret := f.v == varRequest && f.field == "headers"
	if f.keyed {
		if secret && secretHeader(f.key) {
			return "<redacted>"
		}
		if !v.IsValid() || v.Kind() != reflect.Map {
			return "<absent>"
		}
		v = v.MapIndex(reflect.ValueOf(f.key))
		if !v.IsValid() {
			return "<absent>"
		}
		secret = false
	}
	var b strings.Builder
	render(&b, v, secret || f.name == varRequest)
	return cut(b.String())
}

// celField is the field of struct value v whose cel tag is name.
func celField(v reflect.Value, name string) reflect.Value {
	t := v.Type()
	for i := range t.NumField() {
		if t.Field(i).Tag.Get("cel") == name {
			return v.Field(i)
		}
	}
	return reflect.Value{}
}

// render writes v as short CEL-like text. redact hides the values of
// secret headers in a map of headers (or a whole Request).
func render(b *strings.Builder, v reflect.Value, redact bool) {
	if b.Len() > maxValue*utf8.UTFMax {
		return
	}
	if !v.IsValid() {
		b.WriteString("<absent>")
		return
	}
	if t, ok := v.Interface().(time.Time); ok {
		if t.IsZero() {
			b.WriteString("timestamp(0)")
			return
		}
		b.WriteString(t.UTC().Format(time.RFC3339Nano))
		return
	}
	switch v.Kind() {
	case reflect.String:
		b.WriteString(strconv.Quote(v.String()))
	case reflect.Bool:
		b.WriteString(strconv.FormatBool(v.Bool()))
	case reflect.Slice:
		b.WriteByte('[')
		for i := range v.Len() {
			if i > 0 {
				b.WriteString(", ")
			}
			render(b, v.Index(i), false)
		}
		b.WriteByte(']')
	case reflect.Map:
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(strconv.Quote(k.String()))
			b.WriteString(": ")
			if redact && secretHeader(k.String()) {
				b.WriteString("<redacted>")
				continue
			}
			render(b, v.MapIndex(k), false)
		}
		b.WriteByte('}')
	case reflect.Struct:
		// A whole Request (a rule that reads `request` as a value).
		t := v.Type()
		b.WriteByte('{')
		for i := range t.NumField() {
			if i > 0 {
				b.WriteString(", ")
			}
			name := t.Field(i).Tag.Get("cel")
			b.WriteString(name)
			b.WriteString(": ")
			render(b, v.Field(i), redact && name == "headers")
		}
		b.WriteByte('}')
	default:
		fmt.Fprint(b, v.Interface())
	}
}

// cut shortens s to maxValue runes.
func cut(s string) string {
	if utf8.RuneCountInString(s) <= maxValue {
		return s
	}
	r := []rune(s)
	return string(r[:maxValue]) + "…"
}
