package config

import (
	"fmt"
	"io"
	"slices"
)

// What the configuration prints: check-config's effective settings (Masked,
// and MaskedApp for each app) and serve --help (Usage), every line from the
// key table.

// Masked is the effective configuration in key order, one "key = value"
// line each, with secrets replaced: what check-config prints.
func (c *Config) Masked() []string {
	lines := make([]string, 0, len(keys))
	for _, k := range keys {
		lines = append(lines, k.name+" = "+maskedValue(k, c.Values[k.name]))
	}
	return lines
}

// maskedValue is v, key k's value, as check-config prints it: a secret
// that is set shows as set, never its value (the table's secret column).
func maskedValue(k key, v string) string {
	if k.secret && v != "" && v != "[]" {
		return "****** (set)"
	}
	return v
}

// MaskedApp is an app's effective per-app settings, one "key = value" line
// each with secrets masked, the entry's own keys marked: what check-config
// prints under the app's name.
func (a *App) MaskedApp() []string {
	lines := []string{"hosts = " + fmt.Sprint(a.Hosts)}
	for _, name := range appKeys {
		k, _ := lookup(name)
		v := maskedValue(k, a.Values[name])
		if slices.Contains(a.Own, name) {
			v += "   # this app's"
		}
		lines = append(lines, name+" = "+v)
	}
	return lines
}

// Usage describes every key, for serve --help.
func Usage(w io.Writer) {
	fmt.Fprintln(w, "usage: zitadel-ext-authz serve --config FILE [--key value ...]")
	fmt.Fprintln(w, "\nEvery key can be set in the file, as ZITADEL_EXT_AUTHZ_<KEY> or as --<key-with-dashes>:")
	for _, k := range keys {
		def := fmt.Sprintf(" (default %v)", k.def)
		if s := fmt.Sprint(k.def); s == "" || s == "[]" {
			def = "" // no default: don't print "(default )"
		}
		fmt.Fprintf(w, "  %-38s %s%s\n", k.name, k.help, def)
	}
}
