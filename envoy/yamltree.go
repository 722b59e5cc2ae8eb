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

// The YAML files check-envoy reads (Envoy bootstraps, Istio, Envoy
// Gateway and rendered Helm manifests) are read as plain trees: decoded
// document by document, walked with a path that names where each thing
// is. RouteSettings and HeaderLists are visitors of the same walk.

// docSeparator splits a multi-document YAML file.
var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// yamlDocuments decodes each document of a multi-document file (nil for
// an empty one).
func yamlDocuments(data []byte) ([]any, error) {
	var out []any
	for i, doc := range docSeparator.Split(string(data), -1) {
		if strings.TrimSpace(doc) == "" {
			out = append(out, nil)
			continue
		}
		tree, err := decodeYAML(doc)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		out = append(out, tree)
	}
	return out, nil
}

// decodeYAML decodes one YAML document into maps, lists and scalars.
func decodeYAML(doc string) (any, error) {
	js, err := yaml.YAMLToJSON([]byte(doc))
	if err != nil {
		return nil, err
	}
	var tree any
	d := json.NewDecoder(bytes.NewReader(js))
	d.UseNumber()
	if err := d.Decode(&tree); err != nil {
		return nil, err
	}
	return tree, nil
}

// walkTree walks tree in a stable order (map keys sorted, list items in
// order, named by itemName), calling at for every key of every map with
// the path to it; at handles the key (done: don't walk under it) or
// leaves it to the walk. Its error is returned with the path before it.
func walkTree(tree any, path []string, at func(m map[string]any, k string, path []string) (done bool, err error)) error {
	switch t := tree.(type) {
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(t)) {
			p := append(path[:len(path):len(path)], k)
			done, err := at(t, k, p)
			if err != nil {
				return fmt.Errorf("%s: %w", joinPath(p), err)
			}
			if done {
				continue
			}
			if err := walkTree(t[k], p, at); err != nil {
				return err
			}
		}
	case []any:
		for i, e := range t {
			if err := walkTree(e, append(path[:len(path):len(path)], itemName(e, i)), at); err != nil {
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
