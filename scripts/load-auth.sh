#!/usr/bin/env bash
# Load run for the auth service: starts a release build on a free port with
# its own database prefix, then measures with wrk, in one run:
#   /healthz                 the edge alone (the ceiling)
#   GET  /api/v1/auth/me/    JWT verify + principal check in AuthActor + user read
#   POST /api/v1/auth/login/ argon2id-bound
# Prints wrk's summaries; the instance and its databases are removed after.
# Needs wrk (Debian package `wrk`), PostgreSQL and Redis on localhost.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-15s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
PREFIX="bench_$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
LOG=$(mktemp)

cargo build --release --bin emporium >/dev/null
export EMPORIUM__DATABASE__PREFIX=$PREFIX
export EMPORIUM__HTTP__PORT=0
export EMPORIUM__HTTP__WORKERS=${WORKERS:-2}
export EMPORIUM__LOG__LEVEL=warn
export EMPORIUM__RATE_LIMIT__LOGIN_PER_CLIENT=100000000
export EMPORIUM__RATE_LIMIT__LOGIN_PER_EMAIL=100000000

./target/release/emporium serve >"$LOG" 2>&1 &
SERVER=$!
cleanup() {
  kill "$SERVER" 2>/dev/null || true
  wait "$SERVER" 2>/dev/null || true
  for d in auth catalog orders payments; do
    psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS ${PREFIX}_$d WITH (FORCE)" postgres >/dev/null || true
  done
  rm -f "$LOG" "${LUA:-}"
}
trap cleanup EXIT

for _ in $(seq 1 100); do
  grep -q "listening on" "$LOG" && break
  sleep 0.2
done
BASE=$(grep -o "http://[0-9.]*:[0-9]*" "$LOG" | head -n 1)
[ -n "$BASE" ] || { cat "$LOG"; exit 1; }

curl -fsS -XPOST "$BASE/api/v1/auth/register/" -H 'content-type: application/json' \
  -d '{"email":"load@example.com","password":"load test password"}' >/dev/null
ACCESS=$(curl -fsS -XPOST "$BASE/api/v1/auth/login/" -H 'content-type: application/json' \
  -d '{"email":"load@example.com","password":"load test password"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access"])')

LUA=$(mktemp --suffix=.lua)
cat >"$LUA" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"email":"load@example.com","password":"load test password"}'
LUA

run() {
  echo "== $1"
  shift
  wrk --latency -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" "$@" | grep -E "Requests/sec|Latency |99%|Non-2xx|Socket errors"
}
run "GET /healthz" "$BASE/healthz"
run "GET /api/v1/auth/me/" -H "Authorization: Bearer $ACCESS" "$BASE/api/v1/auth/me/"
run "POST /api/v1/auth/login/" -s "$LUA" "$BASE/api/v1/auth/login/"
