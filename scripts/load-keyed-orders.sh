#!/usr/bin/env bash
# Orders with and without an Idempotency-Key, one after the other on one
# fresh instance (EMPORIUM_BIN picks the build; run it once per build to
# compare builds): 2,000 demo products with stock set high, one customer,
# one unit of a random product among the 100 dearest per order, each key
# unique. Prints orders/s and p99 of each, and the keyed ÷ unkeyed ratio.
# With PROFILE=1, a system-wide `perf record` of the keyed run is kept in
# perf-keyed.data.
# Needs wrk (Debian package `wrk`), PostgreSQL and Redis on localhost.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/instance.sh
BIN=${EMPORIUM_BIN:-./target/release/emporium}
start_instance BASE
"$BIN" seed-demo --products 2000 --customers 0 --seed 42 >/dev/null
psql -h 127.0.0.1 -U postgres -qc "UPDATE product_variants SET stock = 1000000; UPDATE products SET stock = (SELECT 1000000 * count(*) FROM product_variants v WHERE v.product_id = products.id AND v.is_active)" "${PREFIX}_catalog"
curl -fsS -XPOST "$BASE/api/v1/auth/register/" -H 'content-type: application/json' \
  -d '{"email":"buyer@example.com","password":"load test password"}' >/dev/null
ACCESS=$(curl -fsS -XPOST "$BASE/api/v1/auth/login/" -H 'content-type: application/json' \
  -d '{"email":"buyer@example.com","password":"load test password"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access"])')
IDS=$(curl -fsS "$BASE/api/v1/products/?in_stock=true&page_size=100&ordering=-price" \
  | python3 -c 'import json,sys; print(",".join(chr(34)+p["id"]+chr(34) for p in json.load(sys.stdin)["results"]))')
PLAIN=$(mktemp --suffix=.lua) KEYED=$(mktemp --suffix=.lua) OUT=$(mktemp -d)
TEMP_FILES+=("$PLAIN" "$KEYED")
scripts/orders-lua.sh "$ACCESS" "$IDS" >"$PLAIN"
scripts/orders-lua.sh "$ACCESS" "$IDS" keyed >"$KEYED"
wrk --latency -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s "$PLAIN" "$BASE/api/v1/orders/" >"$OUT/plain"
if [ -n "${PROFILE:-}" ]; then
  perf record -a -g -o perf-keyed.data -- sleep "${DURATION%s}" >/dev/null 2>&1 &
  PERF=$!
fi
wrk --latency -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s "$KEYED" "$BASE/api/v1/orders/" >"$OUT/keyed"
[ -n "${PROFILE:-}" ] && wait "$PERF"
rps() { awk '/Requests\/sec/ {print $2}' "$1"; }
p99() { awk '$1 == "99%" {print $2}' "$1"; }
echo "| no key: orders/s | p99 | with a key: orders/s | p99 | keyed ÷ unkeyed |"
echo "|---:|---:|---:|---:|---:|"
echo "| $(rps "$OUT/plain") | $(p99 "$OUT/plain") | $(rps "$OUT/keyed") | $(p99 "$OUT/keyed") | $(awk -v a="$(rps "$OUT/keyed")" -v b="$(rps "$OUT/plain")" 'BEGIN {printf "%.2f", a / b}') |"
rm -rf "$OUT"
