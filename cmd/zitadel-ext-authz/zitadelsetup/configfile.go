package zitadelsetup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/pelletier/go-toml/v2"
)

// readPrevious returns the keys of a configuration written by an earlier
// run, so secrets that ZITADEL can't show again are kept; nil when there
// is none.
func readPrevious(path string) (map[string]any, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("previous configuration: %w", err)
	}
	var m map[string]any
	if err := toml.Unmarshal(data, &m); err != nil {
		// Not ours or damaged: start over, the secrets get regenerated.
		return nil, nil
	}
	return m, nil
}

// writeConfig writes template (TOML) with the client settings of res to
// out, atomically and readable only by its owner (it holds secrets).
func writeConfig(template, out string, owner *[2]int, res *Result) error {
	data, err := os.ReadFile(template)
	if err != nil {
		return fmt.Errorf("configuration template: %w", err)
	}
	var m map[string]any
	if err := toml.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("configuration template %s: %w", template, err)
	}
	if m == nil {
		m = map[string]any{}
	}
	m["client_id"] = res.WebClientID
	m["client_secret"] = res.WebClientSecret
	m["introspection_client_id"] = res.APIClientID
	m["introspection_client_secret"] = res.APIClientSecret
	m["zitadel_project_id"] = res.ProjectID
	body, err := toml.Marshal(m)
	if err != nil {
		return err
	}
	header := fmt.Sprintf("# Written by zitadel-ext-authz zitadel-bootstrap from %s; edit the template, not this file.\n", template)
	tmp, err := os.CreateTemp(filepath.Dir(out), ".zitadel-ext-authz-*.toml")
	if err != nil {
		return fmt.Errorf("write configuration: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(header + string(body)); err != nil {
		tmp.Close()
		return fmt.Errorf("write configuration: %w", err)
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if owner != nil {
		if err := tmp.Chown(owner[0], owner[1]); err != nil {
			tmp.Close()
			return fmt.Errorf("write configuration: %w", err)
		}
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return fmt.Errorf("write configuration: %w", err)
	}
	return nil
}
