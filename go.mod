module github.com/zitadel-ext-authz/zitadel-ext-authz

go 1.26.0

require (
	github.com/dgraph-io/ristretto/v2 v2.4.2
	google.golang.org/protobuf v1.36.12
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/dustin/go-humanize v1.0.1 // indirect
	github.com/stretchr/testify v1.12.1 // indirect
	golang.org/x/sys v0.48.0 // indirect
)
