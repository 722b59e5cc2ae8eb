// Package integration holds the end-to-end tests: the built
// zitadel-ext-authz binary, the dev IdP (devidp), the real Envoy started
// from envoy/envoy.yaml (envoyproc) and the echo upstream, all on
// 127.0.0.1, walked through as a browser (or Chromium) and an API client
// would. The Envoy emulator (envoyemu) runs the same contract walk and must
// agree with the real Envoy. Subpackages provide those parts and the local
// demo (make demo). Product code never imports this tree.
package integration
