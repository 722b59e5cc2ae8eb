package config

import (
	"fmt"
	"strings"
)

// README's tables and lists of keys, generated from the key table so the
// documentation can't drift from it: go test ./cmd/zitadel-ext-authz/config
// -update rewrites them, and the same tests fail when README differs.

// MarkdownTable is README's key table: every key with its default, whether
// an apps entry may set it, what a reload does with it, and its help text.
func MarkdownTable() string {
	var b strings.Builder
	b.WriteString("| key | default | per app | on reload | meaning |\n|---|---|---|---|---|\n")
	for _, k := range keys {
		def := "`" + fmt.Sprint(k.def) + "`"
		if s := fmt.Sprint(k.def); s == "" || s == "[]" {
			def = "–"
		}
		perApp := "–"
		if k.perApp() {
			perApp = "yes"
		}
		help := strings.ReplaceAll(k.help, "|", "\\|")
		if k.secret {
			help += " (secret: masked by check-config)"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", k.name, def, perApp, k.reload.text(), help)
	}
	return b.String()
}

// text is the reload column as README's key table shows it.
func (r reload) text() string {
	switch r.mode {
	case appliedLive, appPolicyKey:
		return "applied"
	case appRebuildKey:
		return "rebuilds the app"
	}
	return "restart"
}

// AppKeysMarkdown is README's list of the keys an apps entry may set.
func AppKeysMarkdown() string {
	const lead = "Per-app keys: "
	return lead + codeList(len(lead), append([]string{"hosts"}, appKeys...)) + ".\n"
}

// ReloadedKeysMarkdown is README's list of the keys a reload applies in
// place: the per-app policy keys and the global keys with a reload
// function.
func ReloadedKeysMarkdown() string {
	policy := keyNames(func(k key) bool { return k.reloadable() && k.perApp() })
	global := keyNames(func(k key) bool { return k.reloadable() && !k.perApp() })
	const perApp, others = "- per app, in place (any other per-app key rebuilds its app): ", "- global: "
	return perApp + codeList(len(perApp), policy) + ";\n" + others + codeList(len(others), global) + ".\n"
}

// codeList is names as `a`, `b` and `c`, wrapped at about 100 columns;
// the first line starts at column col.
func codeList(col int, names []string) string {
	var b strings.Builder
	for i, n := range names {
		item := "`" + n + "`"
		switch {
		case i == 0:
		case i == len(names)-1:
			item = " and " + item
		default:
			b.WriteString(",")
			col++
			item = " " + item
		}
		if col+len(item) > 100 {
			b.WriteString("\n")
			item, col = strings.TrimPrefix(item, " "), 0
		}
		b.WriteString(item)
		col += len(item)
	}
	return b.String()
}
