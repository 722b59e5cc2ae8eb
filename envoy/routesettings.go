package envoy

import (
	"fmt"
)

// RouteSetting is one check_settings.context_extensions found in a
// deployment file: where it is, and its keys and values.
type RouteSetting struct {
	Doc        int    // the YAML document (from 1) in a multi-document file
	Where      string // the path to it: listeners[main]…routes[/api/]…
	Extensions map[string]string
}

// RouteSettings finds every context_extensions in a YAML file of any
// kind: an Envoy bootstrap, Istio or Envoy Gateway manifests (which may
// embed Envoy configuration, as an EnvoyFilter or EnvoyPatchPolicy does),
// or a rendered Helm chart; so check-envoy reads them all the same way.
func RouteSettings(data []byte) ([]RouteSetting, error) {
	docs, err := yamlDocuments(data)
	if err != nil {
		return nil, err
	}
	var out []RouteSetting
	for i, tree := range docs {
		err := walkTree(tree, nil, func(m map[string]any, k string, at []string) (bool, error) {
			if k != "context_extensions" {
				return false, nil
			}
			ext, err := stringMap(m[k])
			if err != nil {
				return true, err
			}
			out = append(out, RouteSetting{Doc: i + 1, Where: joinPath(at), Extensions: ext})
			return true, nil
		})
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
	}
	return out, nil
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
