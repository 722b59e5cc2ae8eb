// Command tools pins Ory Hydra for the end-to-end suite: its module (with
// the replace Hydra's own go.mod needs) is built from here by
// integration/hydra, never by the main module.
package main

import _ "github.com/ory/hydra/v2"

func main() {}
