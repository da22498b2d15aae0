#!/usr/bin/env bash
# Reads while orders flow, in one run on one instance of the demo shop:
#   1. the footwear listing alone (the baseline);
#   2. the same listing while a steady stream of orders (about 30, then
#      about 100 a second) buys Home products, which are not on it;
#   3. the same listing while orders of about 30 and 100 a second buy the
#      very products it shows (every order changes the page).
# The order stream is paced by wrk's delay(): CONNECTIONS_30/100 connections
# each waiting DELAY_MS between orders. Prints req/s and p99 of each
# listing run beside the baseline, the order rate reached, the view's
# counters and the instance's RSS at the end.
# Needs wrk, PostgreSQL and Redis on localhost.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/instance.sh
PRODUCTS=${PRODUCTS:-2000}
DELAY_MS=${DELAY_MS:-100}
LIST="/api/v1/products/?category=footwear&ordering=price&page_size=20"

psql_in() { psql -h 127.0.0.1 -U postgres -Atc "$2" "${PREFIX}_$1"; }
login() {
  curl -fsS -XPOST "$1/api/v1/auth/login/" -H 'content-type: application/json' \
    -d "{\"email\":\"$2\",\"password\":\"load test password\"}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access"])'
}
# ids PATH MIN_STOCK: quoted variant ids with at least MIN_STOCK units on PATH.
ids() {
  curl -fsS "$BASE$1" | python3 -c "import json,sys; print(','.join(chr(34)+v['id']+chr(34) for p in json.load(sys.stdin)['results'] for v in p['variants'] if v['stock'] >= $2))"
}

start_instance BASE
./target/release/emporium seed-demo --products "$PRODUCTS" --customers 0 --seed 42 >/dev/null
curl -fsS -XPOST "$BASE/api/v1/auth/register/" -H 'content-type: application/json' \
  -d '{"email":"buyer@example.com","password":"load test password"}' >/dev/null
ACCESS=$(login "$BASE" buyer@example.com)
METHOD=$(psql -h 127.0.0.1 -U postgres -Atc "SELECT m.id FROM shipping_methods m JOIN shipping_zones z ON z.id = m.zone_id WHERE 'FR' = ANY (z.countries) AND m.is_active AND m.currency = 'EUR' ORDER BY m.name LIMIT 1" "${PREFIX}_orders")
OFF=$(ids "/api/v1/products/?category=home&in_stock=true&page_size=100" 20)
ON=$(ids "$LIST" 1)
[ -n "$OFF" ] && [ -n "$ON" ] || { echo "the demo shop has no stock to order" >&2; exit 1; }

# orders_lua IDS OUT: an order script paced at DELAY_MS per connection.
orders_lua() {
  SHIPPING_METHOD=$METHOD LINE_KEY=variant_id scripts/orders-lua.sh "$ACCESS" "$1" >"$2"
  printf 'function delay()\n  return %s\nend\n' "$DELAY_MS" >>"$2"
}
OFF_LUA=$(mktemp --suffix=.lua)
ON_LUA=$(mktemp --suffix=.lua)
TEMP_FILES+=("$OFF_LUA" "$ON_LUA")
orders_lua "$OFF" "$OFF_LUA"
orders_lua "$ON" "$ON_LUA"

RESULTS=$(mktemp)
TEMP_FILES+=("$RESULTS")
# listing OUT: wrk on the listing, its output written to OUT.
listing() {
  wrk --latency -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" "$BASE$LIST" >"$1"
}
# mixed LABEL LUA CONNECTIONS: the listing while orders run beside it.
mixed() {
  local orders_out before after
  orders_out=$(mktemp)
  TEMP_FILES+=("$orders_out")
  before=$(psql_in orders "SELECT count(*) FROM orders")
  wrk --latency -t1 -c"$3" -d"$DURATION" -s "$2" "$BASE/api/v1/orders/" >"$orders_out" &
  local pid=$!
  sleep 1
  local out
  out=$(mktemp)
  TEMP_FILES+=("$out")
  listing "$out"
  wait "$pid"
  after=$(psql_in orders "SELECT count(*) FROM orders")
  echo "$1|$out|$orders_out|$((after - before))" >>"$RESULTS"
}

curl -fsS "$BASE$LIST" >/dev/null
ALONE=$(mktemp)
TEMP_FILES+=("$ALONE")
listing "$ALONE"
echo "alone|$ALONE||0" >>"$RESULTS"
mixed "~30 orders/s, other products" "$OFF_LUA" 3
mixed "~100 orders/s, other products" "$OFF_LUA" 10
mixed "~30 orders/s, products on the listing" "$ON_LUA" 3
mixed "~100 orders/s, products on the listing" "$ON_LUA" 10

DURATION_S=${DURATION%s}
python3 - "$RESULTS" "$DURATION_S" <<'PY'
import re, sys
def parse(path):
    text = open(path).read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", text).groups()
    p99 = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    return rps, p99, int(bad.group(1)) if bad else 0
rows = [line.rstrip("\n").split("|") for line in open(sys.argv[1])]
base_rps, base_p99, _ = parse(rows[0][1])
print(f"| Listing while | req/s | × alone | p99 ms | × alone p99 | orders/s (refused) |")
print("|---|---|---|---|---|---|")
for label, out, orders_out, placed in rows:
    rps, p99, _ = parse(out)
    if orders_out:
        _, _, refused = parse(orders_out)
        rate = f"{int(placed) / float(sys.argv[2]):.1f} ({refused})"
    else:
        rate = "-"
    print(f"| {label} | {rps:.0f} | {rps / base_rps:.2f} | {p99:.2f} | {p99 / base_p99:.2f} | {rate} |")
PY
echo "== catalog view after the runs"
curl -fsS "$BASE/metrics" | grep -E '^emporium_read_view_(lookups_total|bytes|max_bytes|evictions_total|entries)\{view="catalog"' || true
echo "RSS: $(ps -o rss= -p "${INSTANCE_PIDS[0]}" | awk '{printf "%.0f MiB", $1 / 1024}')"
