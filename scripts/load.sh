#!/usr/bin/env bash
# Every hot path in one run, beside /healthz (the edge's ceiling) and
# pgbench (the database's), printed as one Markdown table of req/s, p50,
# p99 and the ratio to /healthz (orders: also to pgbench's tps).
#   GET /healthz
#   GET /api/v1/products/?…   (cached: warmed first)
#   GET /api/v1/products/{slug}/
#   GET /api/v1/categories/
#   GET /api/v1/auth/me/       (a customer's token)
#   POST /api/v1/orders/       (one random in-stock product per order)
#   pgbench, built-in TPC-B-like script, same connections, scale 10
# Environment: PRODUCTS (10000), DURATION (10s), CONNECTIONS (32),
# THREADS (2), WORKERS (HTTP workers, 2). Each path runs twice: flat out,
# then at about half that rate (its latency when not at the limit).
# Needs wrk and pgbench (Debian packages `wrk`, `postgresql-contrib` or the
# server's own), PostgreSQL and Redis on localhost.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/instance.sh
PRODUCTS=${PRODUCTS:-10000}
OUT=$(mktemp -d)
LUA=$(mktemp --suffix=.lua)
TEMP_FILES+=("$LUA")
PGBENCH_DB="${PREFIX}_pgbench"
trap 'cleanup; [ -n "${KEEP:-}" ] && echo "wrk output kept in $OUT" >&2 || rm -rf "$OUT"; psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $PGBENCH_DB" postgres >/dev/null 2>&1 || true' EXIT

start_instance BASE
./target/release/emporium seed-demo --products "$PRODUCTS" --customers 0 --seed 42 >/dev/null
# Orders measure the write path, not products selling out. (Written before
# any read, so nothing cached can predate it.)
psql -h 127.0.0.1 -U postgres -qc "UPDATE product_variants SET stock = 1000000; UPDATE products SET stock = (SELECT 1000000 * count(*) FROM product_variants v WHERE v.product_id = products.id AND v.is_active)" "${PREFIX}_catalog"
curl -fsS -XPOST "$BASE/api/v1/auth/register/" -H 'content-type: application/json' \
  -d '{"email":"buyer@example.com","password":"load test password"}' >/dev/null
ACCESS=$(curl -fsS -XPOST "$BASE/api/v1/auth/login/" -H 'content-type: application/json' \
  -d '{"email":"buyer@example.com","password":"load test password"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access"])')
LIST="/api/v1/products/?category=footwear&ordering=price&page_size=20"
SLUG=$(curl -fsS "$BASE/api/v1/products/?page_size=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["results"][0]["slug"])')
DETAIL="/api/v1/products/$SLUG/"
for path in "$LIST" "$DETAIL" /api/v1/categories/; do
  curl -fsS "$BASE$path" >/dev/null
  curl -fsS "$BASE$path" >/dev/null
done
IDS=$(curl -fsS "$BASE/api/v1/products/?in_stock=true&page_size=100&ordering=-price" \
  | python3 -c 'import json,sys; print(",".join(chr(34)+p["id"]+chr(34) for p in json.load(sys.stdin)["results"] ))')
scripts/orders-lua.sh "$ACCESS" "$IDS" >"$LUA"
# The same orders, each with its own Idempotency-Key (unique per run,
# thread and request), for the keyed write path.
KEYED_LUA=$(mktemp --suffix=.lua)
TEMP_FILES+=("$KEYED_LUA")
scripts/orders-lua.sh "$ACCESS" "$IDS" keyed >"$KEYED_LUA"

# measure KEY WRK-ARGS...: one wrk run, kept for the table.
measure() {
  local key=$1
  shift
  echo "running $key" >&2
  wrk --latency -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" "$@" >"$OUT/$key.txt"
}

# at_half KEY URL [LUA]: the same path again at about half the rate its
# peak run reached, for the latency a server not at its limit gives: each
# connection pauses between requests (wrk's `delay` hook, whole
# milliseconds, so the rate is approximate — the table shows what it was),
# with enough connections that the pause is at least 5 ms (fast paths) and
# no fewer than CONNECTIONS (slow ones, whose arrivals then stay spread).
at_half() {
  local key=$1 url=$2 lua=${3:-}
  local peak conns delay script
  peak=$(grep -oP 'Requests/sec:\s+\K[\d.]+' "$OUT/$key.txt")
  conns=$(python3 -c "print(max($CONNECTIONS, round($peak / 2 * 0.005)))")
  delay=$(python3 -c "print(max(1, round(1000 * $conns / ($peak / 2))))")
  script=$(mktemp --suffix=.lua)
  TEMP_FILES+=("$script")
  [ -n "$lua" ] && cat "$lua" >"$script"
  echo "function delay() return $delay end" >>"$script"
  echo "running $key at half rate" >&2
  wrk --latency -t"$THREADS" -c"$conns" -d"$DURATION" -s "$script" "${@:4}" "$url" >"$OUT/$key-half.txt"
}

measure healthz "$BASE/healthz"
measure list "$BASE$LIST"
measure detail "$BASE$DETAIL"
measure categories "$BASE/api/v1/categories/"
measure me -H "authorization: Bearer $ACCESS" "$BASE/api/v1/auth/me/"
measure orders -s "$LUA" "$BASE/api/v1/orders/"
measure keyed -s "$KEYED_LUA" "$BASE/api/v1/orders/"
at_half healthz "$BASE/healthz"
at_half list "$BASE$LIST"
at_half detail "$BASE$DETAIL"
at_half categories "$BASE/api/v1/categories/"
at_half me "$BASE/api/v1/auth/me/" "" -H "authorization: Bearer $ACCESS"
at_half orders "$BASE/api/v1/orders/" "$LUA"
at_half keyed "$BASE/api/v1/orders/" "$KEYED_LUA"
echo "running pgbench" >&2
psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $PGBENCH_DB" postgres >/dev/null
pgbench -h 127.0.0.1 -U postgres -i -q -s 10 "$PGBENCH_DB" >/dev/null 2>&1
pgbench -h 127.0.0.1 -U postgres -c "$CONNECTIONS" -j "$THREADS" -T "${DURATION%s}" "$PGBENCH_DB" >"$OUT/pgbench.txt" 2>&1
ORDERS=$(psql -h 127.0.0.1 -U postgres -Atc "SELECT count(*) FROM orders" "${PREFIX}_orders")

python3 - "$OUT" "$ORDERS" <<'PY'
import re, sys, pathlib
out = pathlib.Path(sys.argv[1])
def ms(v):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", v)
    if not m:
        return float("nan")
    n, unit = m.groups()
    return float(n) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]
def wrk(key):
    t = (out / f"{key}.txt").read_text()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
    p50 = ms(re.search(r"^\s+50%\s+(\S+)", t, re.M).group(1))
    p99 = ms(re.search(r"^\s+99%\s+(\S+)", t, re.M).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
    return rps, p50, p99, int(bad.group(1)) if bad else 0
pg = float(re.search(r"tps = ([\d.]+)", (out / "pgbench.txt").read_text()).group(1))
rows = [("GET /healthz", "healthz"), ("GET /api/v1/products/?… (cached)", "list"),
        ("GET /api/v1/products/{slug}/ (cached)", "detail"), ("GET /api/v1/categories/", "categories"),
        ("GET /api/v1/auth/me/", "me"), ("POST /api/v1/orders/", "orders"),
        ("POST /api/v1/orders/ with Idempotency-Key", "keyed")]
ceiling = wrk("healthz")[0]
print("| path | req/s | p50 ms | p99 ms | × /healthz | non-2xx | at half rate: req/s | p50 ms | p99 ms |")
print("|---|---|---|---|---|---|---|---|---|")
for title, key in rows:
    rps, p50, p99, bad = wrk(key)
    h_rps, h_p50, h_p99, h_bad = wrk(f"{key}-half")
    print(f"| {title} | {rps:,.0f} | {p50:.2f} | {p99:.2f} | {rps / ceiling:.3f} | {bad + h_bad} | {h_rps:,.0f} | {h_p50:.2f} | {h_p99:.2f} |")
rps = wrk("orders")[0]
print(f"| pgbench (TPC-B-like, same connections) | {pg:,.0f} tps | | | | |")
print(f"\norders/s ÷ pgbench tps = {rps / pg:.2f}; orders written: {sys.argv[2]}")
PY
