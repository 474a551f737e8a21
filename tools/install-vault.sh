#!/bin/sh
# Builds vault-awsauth (HashiCorp Vault's aws auth method served in-process
# behind Vault's HTTP API, the peer of the vaultauth integration tests) into
# .tools/bin/vault-awsauth, unless the binary there was built from the
# current source. The program lives in tools/vault, a module of its own
# whose go.mod and go.sum pin hashicorp/vault and every dependency, fetched
# through the Go module proxy. A cold build takes several minutes.
set -eu

want=v1.21.4
root=$(cd "$(dirname "$0")/.." && pwd)
src=$root/tools/vault
bindir=$root/.tools/bin
bin=$bindir/vault-awsauth

# The source hash: for go.mod, go.sum and each *.go file in byte order of
# the names, the name, a NUL, the content and a NUL (the test harness,
# internal/awstest/vault.SourceHash, computes the same).
hash=$(cd "$src" && for f in $(ls go.mod go.sum *.go | LC_ALL=C sort); do
	printf '%s\0' "$f"; cat "$f"; printf '\0'
done | sha256sum | cut -d' ' -f1)

if [ -x "$bin" ] && [ "$("$bin" -version 2>/dev/null)" = "$want source $hash" ]; then
	exit 0
fi

command -v go >/dev/null 2>&1 || { echo "install-vault: go is not on PATH" >&2; exit 1; }

mkdir -p "$bindir"
echo "install-vault: building vault-awsauth (hashicorp/vault $want) into $bin (cold: several minutes)" >&2
cd "$src"
tmp=$bin.tmp.$$
trap 'rm -f "$tmp"' EXIT
GOWORK=off GOFLAGS=-mod=readonly go build -trimpath \
	-ldflags "-s -w -X main.sourceHash=$hash" \
	-o "$tmp" .
mv -f "$tmp" "$bin"
trap - EXIT
got=$("$bin" -version)
[ "$got" = "$want source $hash" ] || { echo "install-vault: built binary reports \"$got\", want \"$want source $hash\"" >&2; exit 1; }
echo "install-vault: done" >&2
