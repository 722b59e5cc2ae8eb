// Package integration holds the end-to-end tests: the built
// zitadel-ext-authz binary, the dev IdP (devidp), the Envoy emulator
// (envoyemu) and the echo upstream, all on 127.0.0.1, walked through as a
// browser (or Chromium) would. Subpackages provide those parts and the
// local demo (make demo). Product code never imports this tree.
package integration
