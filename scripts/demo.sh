#!/usr/bin/env bash
# make demo: runs examples/mcp-backend against the local AWS stand-ins
# (irsactl sandbox: OIDC issuer + projected token, STS, IAM, PostgreSQL behind
# an RDS IAM front, Redis behind an ElastiCache IAM front, Secrets Manager, S3),
# with the environment the EKS pod identity webhook would inject, calls its
# endpoints, shows irsactl doctor, and stops everything. Exit 0 on success.
# Everything listens on 127.0.0.1; nothing talks to AWS.
#
# Needs Go, PostgreSQL (postgres and initdb) and redis-server, nothing else,
# and no root: it says what is missing and installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

# What the demo runs: the go command builds it, irsactl sandbox starts
# postgres (initdb, then postgres) and redis-server. Look where the sandbox
# looks: PATH, then Debian's /usr/lib/postgresql/*/bin.
missing=()
command -v go >/dev/null 2>&1 || missing+=("go (Go 1.26 or later: https://go.dev/dl/)")
have_pg() {
  command -v initdb >/dev/null 2>&1 && command -v postgres >/dev/null 2>&1 && return 0
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null && compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null
}
have_pg || missing+=("PostgreSQL server binaries postgres and initdb (Debian/Ubuntu: postgresql; Fedora: postgresql-server; macOS: brew install postgresql)")
command -v redis-server >/dev/null 2>&1 || missing+=("redis-server (Debian/Ubuntu: redis-server; Fedora: redis; macOS: brew install redis)")
if [ ${#missing[@]} -gt 0 ]; then
  echo "make demo needs, and did not find:" >&2
  for m in "${missing[@]}"; do echo "  - $m" >&2; done
  echo "Install them, then run make demo again (no root needed to run it)." >&2
  exit 1
fi

next_steps() {
  cat <<'NEXT'
== What to try next
  - The sandbox by hand: go run ./cmd/irsactl sandbox
      it prints a pod's environment (export lines) and ready-to-paste
      irsactl doctor, psql and redis-cli commands that log in with IAM tokens.
  - Break something and ask irsactl doctor: in a shell with the sandbox's
    exports, unset AWS_ROLE_ARN and set KUBERNETES_SERVICE_HOST=1 (a pod
    whose service account lacks the role annotation), or point
    AWS_ENDPOINT_URL_STS at a closed port; then go run ./cmd/irsactl doctor
    (--json for machines).
  - On a real cluster: examples/README.md walks from make images to a
    least-privilege deployment (IAM role and trust policy, PostgreSQL 15+
    grants, ElastiCache user group, kubectl apply -k examples/kubernetes).
NEXT
}

work=$(mktemp -d "${TMPDIR:-/tmp}/irsakit-demo-XXXXXX")
sandbox_pid="" backend_pid=""
cleanup() {
  local code=$?
  [ -n "$backend_pid" ] && kill -TERM "$backend_pid" 2>/dev/null && wait "$backend_pid" 2>/dev/null || true
  [ -n "$sandbox_pid" ] && kill -TERM "$sandbox_pid" 2>/dev/null && wait "$sandbox_pid" 2>/dev/null || true
  rm -rf "$work"
  if [ "$code" -eq 0 ]; then echo "== demo finished: OK"; next_steps; else echo "== demo FAILED (exit $code)" >&2; fi
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() { printf '\n== %s\n' "$*"; }
fail() { echo "demo: $*" >&2; exit 1; }

step "building irsactl and mcp-backend"
# -buildvcs=false: a checkout owned by another user (or no git at all) must
# not stop the demo; irsactl --version then says (devel).
go build -buildvcs=false -o "$work/irsactl" ./cmd/irsactl
(cd examples && go build -buildvcs=false -o "$work/mcp-backend" ./mcp-backend)

step "starting irsactl sandbox"
"$work/irsactl" sandbox --env-file "$work/sandbox.env" >"$work/sandbox.out" 2>&1 &
sandbox_pid=$!
for _ in $(seq 1 600); do
  [ -f "$work/sandbox.env" ] && break
  kill -0 "$sandbox_pid" 2>/dev/null || { cat "$work/sandbox.out" >&2; fail "irsactl sandbox exited"; }
  sleep 0.1
done
[ -f "$work/sandbox.env" ] || fail "irsactl sandbox did not become ready in 60s"
# shellcheck disable=SC1091
set -a; . "$work/sandbox.env"; set +a
echo "the pod's IRSA environment (what the EKS webhook injects, pointed at the stand-ins):"
grep -E 'AWS_ROLE_ARN|AWS_WEB_IDENTITY_TOKEN_FILE|AWS_STS_REGIONAL_ENDPOINTS|AWS_REGION|AWS_ENDPOINT_URL' "$work/sandbox.env" | sed 's/^export /  /'
echo "the app's bucket (the role's policy is s3store.Policy for it):"
grep -E 'S3_BUCKET|S3_PREFIX|S3_PATH_STYLE' "$work/sandbox.env" | sed 's/^export /  /'

step "irsactl doctor"
"$work/irsactl" doctor \
  --db-endpoint "$DATABASE_ENDPOINT" --db-user "$DATABASE_USER" --db-name "$DATABASE_NAME" --db-ca "$DATABASE_CA_FILE" \
  --cache-endpoint "$REDIS_ENDPOINT" --cache "$REDIS_CACHE_NAME" --cache-user "$REDIS_USER" --cache-ca "$REDIS_CA_FILE" \
  --secret "$SECRET_ID" --bucket "$S3_BUCKET/$S3_PREFIX" || fail "irsactl doctor found a problem"

step "starting mcp-backend"
LISTEN_ADDR="127.0.0.1:0" "$work/mcp-backend" >"$work/backend.log" 2>&1 &
backend_pid=$!
addr=""
for _ in $(seq 1 600); do
  grep -q '"msg":"mcp-backend ready"' "$work/backend.log" &&
    addr=$(sed -n 's/.*"msg":"mcp-backend listening","addr":"\([0-9.:]*\)".*/\1/p' "$work/backend.log")
  [ -n "$addr" ] && break
  kill -0 "$backend_pid" 2>/dev/null || { cat "$work/backend.log" >&2; fail "mcp-backend exited"; }
  sleep 0.1
done
[ -n "$addr" ] || fail "mcp-backend did not connect its dependencies in 60s"
grep -q 'Using IRSA authentication for AWS services' "$work/backend.log" || { cat "$work/backend.log" >&2; fail "no IRSA log line"; }
echo "mcp-backend log: $(grep 'Using IRSA authentication' "$work/backend.log")"

# call METHOD PATH [JSON]: a plain HTTP/1.0 request over bash's /dev/tcp (no
# curl needed); prints the body, fails on a non-2xx status.
call() {
  local method=$1 path=$2 body=${3:-} resp status
  exec 3<>"/dev/tcp/${addr%:*}/${addr##*:}"
  printf '%s %s HTTP/1.0\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s' \
    "$method" "$path" "$addr" "${#body}" "$body" >&3
  resp=$(timeout 10 cat <&3 | tr -d '\r')
  exec 3<&-
  status=$(printf '%s\n' "$resp" | head -n1 | cut -d' ' -f2)
  printf '%s\n' "${resp#*$'\n\n'}"
  case "$status" in 2??) ;; *) fail "$method $path answered HTTP $status" ;; esac
}

step "GET /healthz (liveness: no AWS call)"
call GET /healthz
step "GET /readyz (readiness: the database the pod cannot serve without)"
call GET /readyz | tee "$work/readyz.json"
grep -q '"ready": true' "$work/readyz.json" || fail "/readyz is not ready"
step "GET /statusz (each dependency probed: PostgreSQL, Redis, S3, Secrets Manager)"
call GET /statusz | tee "$work/statusz.json"
grep -A1 '"s3": {' "$work/statusz.json" | grep -q '"status": "ok"' || fail "S3 is not ready"
step "GET /api/whoami"
call GET /api/whoami
step "POST /api/notes (PostgreSQL insert, Redis counter, note object put to S3, receipt signed with the secret)"
call POST /api/notes '{"text":"hello from IRSA"}' | tee "$work/note.json"
grep -q "\"s3://$S3_BUCKET/$S3_PREFIX[0-9]*\.json\"" "$work/note.json" || fail "the note was not stored in S3"
step "GET /statusz again (S3 now lists the note's object)"
call GET /statusz >"$work/statusz2.json"
grep -A2 '"s3": {' "$work/statusz2.json" | grep '"detail"' | sed 's/^ *//'
grep -A2 '"s3": {' "$work/statusz2.json" | grep -q '(1 key(s) seen)' || fail "S3 does not list the note"
step "GET /api/notes (from PostgreSQL, then cached in Redis)"
call GET /api/notes >"$work/list1.json"; grep '"source"' "$work/list1.json"
call GET /api/notes >"$work/list2.json"; grep '"source"' "$work/list2.json"
grep -q '"source": "cache"' "$work/list2.json" || fail "the second list did not come from the cache"
step "GET /debug/irsa (the caches' counters, also in expvar's /debug/vars: one credential fetch from STS serves every client; no secret)"
call GET /debug/irsa | tee "$work/debug.json"
grep -A1 '"session": {' "$work/debug.json" | grep -q '"fetches": 1,' || fail "/debug/irsa does not show the one credential fetch"
call GET /debug/vars >"$work/vars.json"
grep -q '"irsa": {' "$work/vars.json" || fail "expvar does not publish the counters"

step "SIGTERM to mcp-backend (graceful shutdown)"
kill -TERM "$backend_pid"
wait "$backend_pid" || fail "mcp-backend did not exit cleanly"
backend_pid=""
grep -q 'stopped cleanly' "$work/backend.log" || fail "no clean shutdown"
echo "mcp-backend stopped cleanly"

