// Package config loads zitadel-ext-authz's configuration with viper: a TOML,
// YAML or JSON file (by extension) using oauth2-proxy's key names, so the
// ZITADEL guide's oauth2-proxy file loads unchanged; ZITADEL_EXT_AUTHZ_<KEY>
// environment variables; and --<key-with-dashes> flags. Flags win over the
// environment, the environment over the file (CONTRACT.md §1–2).
//
// It validates everything before any listener opens and reports the first
// problem as one line naming the key and the fix. Unknown keys and accepted
// but ignored oauth2-proxy keys (upstreams) are warnings. It outputs plain
// structs for the other packages; no other package imports viper.
package config
