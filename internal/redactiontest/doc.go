// Package redactiontest holds the cross-package test that no exported type
// holding a token, password, secret value, secret key or presigned URL
// prints it: every such type goes through every fmt verb, containers,
// errors, slog's text and JSON handlers and encoding/json, by value and by
// pointer. It has no code of its own.
package redactiontest
