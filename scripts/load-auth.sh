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
source scripts/instance.sh

start_instance BASE EMPORIUM__RATE_LIMIT__LOGIN_PER_CLIENT=100000000 EMPORIUM__RATE_LIMIT__LOGIN_PER_EMAIL=100000000
[ -n "$BASE" ] || { cat "$LOG"; exit 1; }

curl -fsS -XPOST "$BASE/api/v1/auth/register/" -H 'content-type: application/json' \
  -d '{"email":"load@example.com","password":"load test password"}' >/dev/null
ACCESS=$(curl -fsS -XPOST "$BASE/api/v1/auth/login/" -H 'content-type: application/json' \
  -d '{"email":"load@example.com","password":"load test password"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access"])')

LUA=$(mktemp --suffix=.lua)
TEMP_FILES+=("$LUA")
cat >"$LUA" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"email":"load@example.com","password":"load test password"}'
LUA

run "GET /healthz" "$BASE/healthz"
run "GET /api/v1/auth/me/" -H "Authorization: Bearer $ACCESS" "$BASE/api/v1/auth/me/"
run "POST /api/v1/auth/login/" -s "$LUA" "$BASE/api/v1/auth/login/"
