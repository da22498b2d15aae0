#!/usr/bin/env bash
# Load run for the catalog: one release build, a catalog of PRODUCTS demo
# products, and two instances on the same databases — one with the Redis
# cache, one whose Redis URL points nowhere (every read from PostgreSQL).
# wrk then measures, in one run:
#   /healthz on the cached instance      (the ceiling)
#   product list, cached and uncached    (same URL on each instance)
#   product detail, cached and uncached
# Needs wrk (Debian package `wrk`), PostgreSQL and Redis on localhost.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
PRODUCTS=${PRODUCTS:-10000}
PREFIX="bench_$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
LOG_A=$(mktemp)
LOG_B=$(mktemp)

cargo build --release --bin emporium >/dev/null
export EMPORIUM__DATABASE__PREFIX=$PREFIX
export EMPORIUM__HTTP__PORT=0
export EMPORIUM__HTTP__WORKERS=${WORKERS:-2}
export EMPORIUM__LOG__LEVEL=error

./target/release/emporium serve >"$LOG_A" 2>&1 &
A=$!
B=
cleanup() {
  kill $A $B 2>/dev/null || true
  wait $A $B 2>/dev/null || true
  for d in auth catalog orders payments; do
    psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS ${PREFIX}_$d WITH (FORCE)" postgres >/dev/null || true
  done
  rm -f "$LOG_A" "$LOG_B"
}
trap cleanup EXIT

base_of() {
  for _ in $(seq 1 150); do
    grep -q "listening on" "$1" && break
    sleep 0.2
  done
  grep -o "http://[0-9.]*:[0-9]*" "$1" | head -n 1
}
CACHED=$(base_of "$LOG_A")
./target/release/emporium seed-demo --products "$PRODUCTS" --seed 42
EMPORIUM__REDIS__URL=redis://127.0.0.1:1 ./target/release/emporium serve >"$LOG_B" 2>&1 &
B=$!
UNCACHED=$(base_of "$LOG_B")

LIST="/api/v1/products/?category=footwear&ordering=price&page_size=20"
SLUG=$(curl -fsS "$CACHED/api/v1/products/?page_size=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["results"][0]["slug"])')
DETAIL="/api/v1/products/$SLUG/"
curl -fsS "$CACHED$LIST" >/dev/null
curl -fsS "$CACHED$DETAIL" >/dev/null

run() {
  echo "== $1"
  wrk --latency -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" "$2" | grep -E "Requests/sec|99%|Non-2xx|Socket errors"
}
run "GET /healthz" "$CACHED/healthz"
run "product list, cached" "$CACHED$LIST"
run "product list, uncached" "$UNCACHED$LIST"
run "product detail, cached" "$CACHED$DETAIL"
run "product detail, uncached" "$UNCACHED$DETAIL"
