// Package sessionpb holds the Go types generated from proto/session.proto: the
// session and login-state payloads that authz/session encrypts into cookies.
//
// The generated file is committed; `make proto` regenerates it with protoc and
// protoc-gen-go. Field numbers are never reused, so old cookies keep decoding.
package sessionpb
