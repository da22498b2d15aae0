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
source scripts/instance.sh
PRODUCTS=${PRODUCTS:-10000}

start_instance CACHED
./target/release/emporium seed-demo --products "$PRODUCTS" --customers 0 --seed 42
start_instance UNCACHED EMPORIUM__REDIS__URL=redis://127.0.0.1:1

LIST="/api/v1/products/?category=footwear&ordering=price&page_size=20"
SLUG=$(curl -fsS "$CACHED/api/v1/products/?page_size=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["results"][0]["slug"])')
DETAIL="/api/v1/products/$SLUG/"
curl -fsS "$CACHED$LIST" >/dev/null
curl -fsS "$CACHED$DETAIL" >/dev/null

run "GET /healthz" "$CACHED/healthz"
run "product list, cached" "$CACHED$LIST"
run "product list, uncached" "$UNCACHED$LIST"
run "product detail, cached" "$CACHED$DETAIL"
run "product detail, uncached" "$UNCACHED$DETAIL"
