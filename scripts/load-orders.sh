#!/usr/bin/env bash
# Load run for order creation: a release build with PRODUCTS demo products,
# one customer placing orders of one random in-stock product each, measured
# with wrk beside /healthz in the same run. Each order is a principal check,
# a catalog snapshot, a stock reservation (catalog transaction) and the
# order write (orders transaction).
# Needs wrk (Debian package `wrk`), PostgreSQL and Redis on localhost.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/instance.sh
PRODUCTS=${PRODUCTS:-2000}
LUA=$(mktemp --suffix=.lua)
TEMP_FILES+=("$LUA")

start_instance BASE
./target/release/emporium seed-demo --products "$PRODUCTS" --customers 0 --seed 42 >/dev/null

curl -fsS -XPOST "$BASE/api/v1/auth/register/" -H 'content-type: application/json' \
  -d '{"email":"buyer@example.com","password":"load test password"}' >/dev/null
ACCESS=$(curl -fsS -XPOST "$BASE/api/v1/auth/login/" -H 'content-type: application/json' \
  -d '{"email":"buyer@example.com","password":"load test password"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access"])')
# The demo shop's first method to France, charged on every order.
METHOD=$(psql -h 127.0.0.1 -U postgres -Atc "SELECT m.id FROM shipping_methods m JOIN shipping_zones z ON z.id = m.zone_id WHERE 'FR' = ANY (z.countries) AND m.is_active AND m.currency = 'EUR' ORDER BY m.name LIMIT 1" "${PREFIX}_orders")
# Variants with stock of the dearest in-stock products, ordered by variant.
IDS=$(curl -fsS "$BASE/api/v1/products/?in_stock=true&page_size=100&ordering=-price" \
  | python3 -c 'import json,sys; print(",".join(chr(34)+v["id"]+chr(34) for p in json.load(sys.stdin)["results"] for v in p["variants"] if v["stock"] >= 20))')
SHIPPING_METHOD=$METHOD LINE_KEY=variant_id scripts/orders-lua.sh "$ACCESS" "$IDS" >"$LUA"

run "GET /healthz" "$BASE/healthz"
run "POST /api/v1/orders/" -s "$LUA" "$BASE/api/v1/orders/"
psql -h 127.0.0.1 -U postgres -Atc "SELECT 'orders written: ' || count(*) FROM orders" "${PREFIX}_orders"
# Refused orders and why (warn-level logs name each shed or failed request).
psql -h 127.0.0.1 -U postgres -Atc "SELECT 'products sold out: ' || count(*) FROM products WHERE stock = 0" "${PREFIX}_catalog"
