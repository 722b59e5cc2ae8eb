package envoy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// RouteSetting is one check_settings.context_extensions found in a
// deployment file: where it is, and its keys and values.
type RouteSetting struct {
	Doc        int    // the YAML document (from 1) in a multi-document file
	Where      string // the path to it: listeners[main]…routes[/api/]…
	Extensions map[string]string
}

// docSeparator splits a multi-document YAML file.
var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// RouteSettings finds every context_extensions in a YAML file of any
// kind: an Envoy bootstrap, Istio or Envoy Gateway manifests (which may
// embed Envoy configuration, as an EnvoyFilter or EnvoyPatchPolicy does),
// or a rendered Helm chart; so check-envoy reads them all the same way.
func RouteSettings(data []byte) ([]RouteSetting, error) {
	var out []RouteSetting
	for i, doc := range docSeparator.Split(string(data), -1) {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		js, err := yaml.YAMLToJSON([]byte(doc))
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		var tree any
		d := json.NewDecoder(bytes.NewReader(js))
		d.UseNumber()
		if err := d.Decode(&tree); err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		w := walker{doc: i + 1}
		if err := w.walk(tree, nil); err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		out = append(out, w.found...)
	}
	return out, nil
}

type walker struct {
	doc   int
	found []RouteSetting
}

func (w *walker) walk(v any, path []string) error {
	switch t := v.(type) {
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(t)) {
			if k == "context_extensions" {
				ext, err := stringMap(t[k])
				if err != nil {
					return fmt.Errorf("%s: %w", joinPath(append(path, k)), err)
				}
				w.found = append(w.found, RouteSetting{Doc: w.doc, Where: joinPath(append(path, k)), Extensions: ext})
				continue
			}
			if err := w.walk(t[k], append(path, k)); err != nil {
				return err
			}
		}
	case []any:
		for i, e := range t {
			if err := w.walk(e, append(path[:len(path):len(path)], itemName(e, i))); err != nil {
				return err
			}
		}
	}
	return nil
}

// joinPath writes a path as YAML readers do: keys joined with dots, list
// items in brackets after their list.
func joinPath(path []string) string {
	var b strings.Builder
	for i, p := range path {
		if i > 0 && !strings.HasPrefix(p, "[") {
			b.WriteByte('.')
		}
		b.WriteString(p)
	}
	return b.String()
}

// itemName names a list item in a path: its name, a route by its match,
// else its index.
func itemName(e any, i int) string {
	m, _ := e.(map[string]any)
	if n, ok := m["name"].(string); ok {
		return "[" + n + "]"
	}
	if match, ok := m["match"].(map[string]any); ok {
		for _, k := range []string{"prefix", "path", "safe_regex", "path_separated_prefix"} {
			if p, ok := match[k].(string); ok {
				return "[" + k + " " + p + "]"
			}
		}
	}
	return "[" + strconv.Itoa(i) + "]"
}

// stringMap is a context_extensions value: a map of strings (Envoy's
// map<string, string>: any other value is a broken file).
func stringMap(v any) (map[string]string, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("want a map of strings")
	}
	out := make(map[string]string, len(m))
	for k, x := range m {
		s, ok := x.(string)
		if !ok {
			return nil, fmt.Errorf("%s: want a string (quote it), got %v", k, x)
		}
		out[k] = s
	}
	return out, nil
}
