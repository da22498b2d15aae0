#!/usr/bin/env bash
# Two builds of Emporium side by side on the same databases, measured in
# alternating rounds so that machine noise falls on both alike:
#   scripts/compare-builds.sh OLD_BINARY NEW_BINARY
# Paths: /healthz, a product by slug, a listing page, /auth/me, and
# POST /api/v1/orders/ without and with an Idempotency-Key. Prints one
# Markdown row per path: req/s of each build (best of ROUNDS), p99, and
# new/old. Environment as scripts/load.sh (DURATION, CONNECTIONS, THREADS,
# WORKERS), plus ROUNDS (2) and PRODUCTS (2000).
set -euo pipefail
cd "$(dirname "$0")/.."
OLD_BIN=$(realpath "$1")
NEW_BIN=$(realpath "$2")
source scripts/instance.sh
ROUNDS=${ROUNDS:-2}
PRODUCTS=${PRODUCTS:-2000}
OUT=$(mktemp -d)
TEMP_FILES+=("$OUT"/*)

EMPORIUM_BIN=$OLD_BIN start_instance OLD
EMPORIUM_BIN=$NEW_BIN start_instance NEW
"$NEW_BIN" seed-demo --products "$PRODUCTS" --customers 0 --seed 42 >/dev/null
# Orders measure the write path, not products selling out (written before
# any read, so nothing cached predates it).
psql -h 127.0.0.1 -U postgres -qc "UPDATE products SET stock = 1000000" "${PREFIX}_catalog"
# Builds with variants keep stock on them (builds before variants have no such table).
psql -h 127.0.0.1 -U postgres -qc "UPDATE product_variants SET stock = 1000000" "${PREFIX}_catalog" 2>/dev/null || true
curl -fsS -XPOST "$OLD/api/v1/auth/register/" -H 'content-type: application/json' \
  -d '{"email":"reader@example.com","password":"load test password"}' >/dev/null
ACCESS=$(curl -fsS -XPOST "$OLD/api/v1/auth/login/" -H 'content-type: application/json' \
  -d '{"email":"reader@example.com","password":"load test password"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access"])')
SLUG=$(curl -fsS "$OLD/api/v1/products/?page_size=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["results"][0]["slug"])')
LIST="/api/v1/products/?category=footwear&ordering=price&page_size=20"

IDS=$(curl -fsS "$OLD/api/v1/products/?in_stock=true&page_size=100&ordering=-price" \
  | python3 -c 'import json,sys; print(",".join(chr(34)+p["id"]+chr(34) for p in json.load(sys.stdin)["results"]))')
scripts/orders-lua.sh "$ACCESS" "$IDS" >"$OUT/orders.lua"
scripts/orders-lua.sh "$ACCESS" "$IDS" keyed >"$OUT/keyed.lua"

run() { # run BASE PATH FILE [auth | a wrk script in $OUT]
  local args=()
  case "${4:-}" in
    auth) args=(-H "Authorization: Bearer $ACCESS") ;;
    "") ;;
    *) args=(-s "$OUT/$4") ;;
  esac
  [ "${4:-}" = auth ] || [ -z "${4:-}" ] && curl -fsS "${args[@]}" "$1$2" >/dev/null
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "${args[@]}" "$1$2" >"$3"
}
rps() { awk '/Requests\/sec/ {print $2}' "$1"; }
p99() { awk '$1 == "99%" {print $2}' "$1"; }

echo "| path | old req/s | new req/s | new / old | old p99 | new p99 |"
echo "|---|---:|---:|---:|---:|---:|"
for entry in "/healthz|" "/api/v1/products/$SLUG/|" "$LIST|" "/api/v1/auth/me/|auth" \
  "/api/v1/orders/|orders.lua" "/api/v1/orders/|keyed.lua"; do
  path=${entry%%|*}
  auth=${entry##*|}
  best_old=0 best_new=0 p_old="" p_new=""
  for round in $(seq 1 "$ROUNDS"); do
    run "$OLD" "$path" "$OUT/old" "$auth"
    run "$NEW" "$path" "$OUT/new" "$auth"
    o=$(rps "$OUT/old") n=$(rps "$OUT/new")
    if awk -v a="$o" -v b="$best_old" 'BEGIN {exit !(a > b)}'; then best_old=$o p_old=$(p99 "$OUT/old"); fi
    if awk -v a="$n" -v b="$best_new" 'BEGIN {exit !(a > b)}'; then best_new=$n p_new=$(p99 "$OUT/new"); fi
  done
  ratio=$(awk -v a="$best_new" -v b="$best_old" 'BEGIN {printf "%.2f", a / b}')
  title="${path%%\?*}"
  case "$auth" in orders.lua) title="POST $title" ;; keyed.lua) title="POST $title with a key" ;; esac
  echo "| \`$title\` | $best_old | $best_new | $ratio | $p_old | $p_new |"
done
rm -rf "$OUT"
