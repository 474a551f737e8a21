#!/bin/sh
# Builds versitygw (the S3 + IAM + STS peer the integration tests run
# against) into .tools/bin/versitygw, unless the version there is already the
# pinned one. The version and every dependency are pinned by tools/go.mod and
# tools/go.sum, a module separate from the library's, and fetched through the
# Go module proxy. A cold build takes a few minutes.
set -eu

want=v1.8.0
root=$(cd "$(dirname "$0")/.." && pwd)
bindir=$root/.tools/bin
bin=$bindir/versitygw

if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -Eq "^Version *: *$want\$"; then
	exit 0
fi

command -v go >/dev/null 2>&1 || { echo "install-versitygw: go is not on PATH" >&2; exit 1; }

mkdir -p "$bindir"
echo "install-versitygw: building versitygw $want into $bin (cold: a few minutes)" >&2
cd "$root/tools"
tmp=$bin.tmp.$$
trap 'rm -f "$tmp"' EXIT
GOWORK=off GOFLAGS=-mod=readonly go build -trimpath \
	-ldflags "-s -w -X main.Version=$want -X main.Build=module-proxy" \
	-o "$tmp" github.com/versity/versitygw/cmd/versitygw
mv -f "$tmp" "$bin"
trap - EXIT
"$bin" --version | grep -Eq "^Version *: *$want\$" || { echo "install-versitygw: built binary does not report $want" >&2; exit 1; }
echo "install-versitygw: done" >&2
