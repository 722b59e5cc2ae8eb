package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	toml "github.com/pelletier/go-toml/v2"
	"github.com/spf13/viper"
)

// formatOf is the format a config file is read as: by its extension for
// .toml, .yaml, .yml and .json, else TOML, which is what oauth2-proxy's own
// files are whatever their name (oauth2-proxy.cfg in its docs, Helm chart
// and packages).
func formatOf(path string) string {
	switch ext := strings.ToLower(strings.TrimPrefix(filepath.Ext(path), ".")); ext {
	case "toml", "json":
		return ext
	case "yaml", "yml":
		return "yaml"
	default:
		return "toml"
	}
}

// readFile loads path into v. A file that doesn't parse is named with the
// line of the mistake and the format it was read as.
func readFile(v *viper.Viper, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	format := formatOf(path)
	v.SetConfigType(format)
	if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
		line := errorLine(err, data)
		where := ""
		if line > 0 {
			where = fmt.Sprintf(", line %d", line)
		}
		hint := ""
		if format == "toml" && !strings.EqualFold(filepath.Ext(path), ".toml") {
			hint = " (files without a .yaml, .yml or .json extension are read as TOML, like oauth2-proxy.cfg)"
		}
		return fmt.Errorf("config file %s%s: not valid %s%s: %w", path, where, strings.ToUpper(format), hint, unwrapParse(err))
	}
	return nil
}

// unwrapParse drops viper's wrapper, whose text repeats the cause.
func unwrapParse(err error) error {
	if inner := errors.Unwrap(err); inner != nil {
		return inner
	}
	return err
}

// errorLine finds the line of a parse error, 0 when unknown.
func errorLine(err error, data []byte) int {
	var tomlErr *toml.DecodeError
	if errors.As(err, &tomlErr) {
		row, _ := tomlErr.Position()
		return row
	}
	var jsonErr *json.SyntaxError
	if errors.As(err, &jsonErr) {
		return bytes.Count(data[:min(int(jsonErr.Offset), len(data))], []byte("\n")) + 1
	}
	return 0 // YAML errors name their line in their text
}

// readFile reads the file a key names, recording a digest of its content
// (a reload compares them: a rotated secret applies without a restart).
func (r *resolver) readFile(c *Config, key, path string) ([]byte, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		r.fail(key, "%v", err)
		return nil, false
	}
	sum := sha256.Sum256(data)
	if c.FileDigests == nil {
		c.FileDigests = map[string]string{}
	}
	c.FileDigests[key] += "sha256:" + hex.EncodeToString(sum[:8])
	c.Files = append(c.Files, path)
	return data, true
}
