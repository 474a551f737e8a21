// Package tools pins the third-party programs the tests run, in a module of
// their own so none of their dependencies reach the library's go.mod. The
// versions are recorded as tool directives in go.mod and checksummed in
// go.sum; install-versitygw.sh builds them.
package tools
