#!/usr/bin/env bash
# Load run for recommendations: one release build, the demo shop (PRODUCTS
# products, CUSTOMERS customers with delivered orders), a model built from
# it, then wrk in one run:
#   /healthz                                  (the ceiling)
#   popular recommendations (anonymous)
#   personal recommendations (a demo customer's token)
#   similar products of one product
# Needs wrk (Debian package `wrk`), PostgreSQL and Redis on localhost.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/instance.sh
PRODUCTS=${PRODUCTS:-2000}
CUSTOMERS=${CUSTOMERS:-500}

start_instance BASE
./target/release/emporium seed-demo --products "$PRODUCTS" --customers "$CUSTOMERS" --seed 42 >/dev/null
./target/release/emporium create-admin --email ops@bench.example --password 'bench password 1' >/dev/null
token() {
  curl -fsS -H 'content-type: application/json' -d "{\"email\":\"$1\",\"password\":\"$2\"}" \
    "$BASE/api/v1/auth/login/" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access"])'
}
ADMIN=$(token ops@bench.example 'bench password 1')
CUSTOMER=$(token customer3@demo.emporium.test 'demo password')
curl -fsS -X POST -H "authorization: Bearer $ADMIN" "$BASE/api/v1/admin/recommendations/rebuild/" >/dev/null
for _ in $(seq 1 300); do
  curl -fsS -H "authorization: Bearer $ADMIN" "$BASE/api/v1/admin/recommendations/" \
    | python3 -c 'import json,sys; r=json.load(sys.stdin); sys.exit(0 if r["live"] and r["live"]["orders"] > 0 and not r["building"] else 1)' && break
  sleep 0.5
done
PRODUCT=$(curl -fsS "$BASE/api/v1/products/recommendations/?limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["results"][0]["id"])')

run "GET /healthz" "$BASE/healthz"
run "popular recommendations" "$BASE/api/v1/products/recommendations/"
run "personal recommendations" -H "authorization: Bearer $CUSTOMER" "$BASE/api/v1/products/recommendations/"
run "similar products" "$BASE/api/v1/products/$PRODUCT/similar/"
