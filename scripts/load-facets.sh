#!/usr/bin/env bash
# Faceted listings beside the plain listing and /healthz, in one run: a
# catalog of PRODUCTS demo products (apparel in sizes and colours, shoes in
# sizes, cameras with storage, the rest single) and one instance.
#   cached: /healthz, plain list, facet list (32 connections; the read view
#           answers), each listing also with `Accept-Encoding: gzip` as
#           browsers send it (the view's compressed copy)
#   misses: the same listings with a random `max_price` per request, so
#           every one misses the view and Redis: with 32 connections
#           (throughput) and with one (latency without a queue)
# Prints a table with each row's ratio to /healthz.
# Needs wrk (Debian package `wrk`), PostgreSQL and Redis on localhost.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/instance.sh
PRODUCTS=${PRODUCTS:-10000}
OUT=$(mktemp -d)


start_instance CACHED
"${EMPORIUM_BIN:-./target/release/emporium}" seed-demo --products "$PRODUCTS" --customers 0 --seed 42 >/dev/null
MISS_LUA=$(mktemp --suffix=.lua)
TEMP_FILES+=("$MISS_LUA")
# A different high price bound each request, far above every demo price:
# a new cache key (one in a billion repeats), the same result.
cat >"$MISS_LUA" <<'LUA'
request = function()
  return wrk.format("GET", wrk.path .. "&max_price=" .. math.random(100000000, 1000000000000))
end
LUA

LIST="/api/v1/products/?category=apparel&ordering=price&page_size=20"
FACETS="$LIST&facets=true"
FILTERED="/api/v1/products/?category=apparel&option.size=M,L&option.colour=blue&facets=true&page_size=20"
for url in "$LIST" "$FACETS" "$FILTERED"; do
  curl -fsS "$CACHED$url" >/dev/null
  curl -fsS "$CACHED$url" >/dev/null
done
for url in "$LIST" "$FACETS"; do
  plain=$(curl -fsS "$CACHED$url" | wc -c)
  packed=$(curl -fsS -H "Accept-Encoding: gzip" "$CACHED$url" | wc -c)
  echo "$url: $plain bytes, $packed gzipped" >&2
done
curl -fsS "$CACHED$FACETS" | python3 -c '
import json, sys
page = json.load(sys.stdin)
f = page["facets"]
print("facet listing:", page["count"], "products,", len(f["categories"]), "categories,",
      {k: len(v) for k, v in f["options"].items()}, "option values", file=sys.stderr)'

measure() {
  local key=$1 conns=$2 url=$3
  shift 3
  echo "running $key" >&2
  wrk --latency -t"$(( conns < THREADS ? conns : THREADS ))" -c"$conns" -d"$DURATION" "$@" "$url" >"$OUT/$key.txt"
}
measure healthz "$CONNECTIONS" "$CACHED/healthz"
measure list "$CONNECTIONS" "$CACHED$LIST"
measure facets "$CONNECTIONS" "$CACHED$FACETS"
# As browsers ask for them: the view's gzip copy.
GZIP=(-H "Accept-Encoding: gzip, deflate, br")
measure list-gzip "$CONNECTIONS" "$CACHED$LIST" "${GZIP[@]}"
measure facets-gzip "$CONNECTIONS" "$CACHED$FACETS" "${GZIP[@]}"
measure list-miss "$CONNECTIONS" "$CACHED$LIST" -s "$MISS_LUA"
measure facets-miss "$CONNECTIONS" "$CACHED$FACETS" -s "$MISS_LUA"
measure list-miss-1 1 "$CACHED$LIST" -s "$MISS_LUA"
measure facets-miss-1 1 "$CACHED$FACETS" -s "$MISS_LUA"
measure filtered-miss-1 1 "$CACHED$FILTERED" -s "$MISS_LUA"

python3 - "$OUT" "$PRODUCTS" <<'PY'
import re, sys, pathlib
out = pathlib.Path(sys.argv[1])
def ms(v):
    n, unit = re.match(r"([\d.]+)(us|ms|s|m)$", v).groups()
    return float(n) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]
def wrk(key):
    t = (out / f"{key}.txt").read_text()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
    p50 = ms(re.search(r"^\s+50%\s+(\S+)", t, re.M).group(1))
    p99 = ms(re.search(r"^\s+99%\s+(\S+)", t, re.M).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
    return rps, p50, p99, int(bad.group(1)) if bad else 0
rows = [("GET /healthz", "healthz"), ("plain list, cached", "list"), ("facet list, cached", "facets"),
        ("plain list, cached, gzip accepted", "list-gzip"), ("facet list, cached, gzip accepted", "facets-gzip"),
        ("plain list, every request a miss", "list-miss"), ("facet list, every request a miss", "facets-miss"),
        ("plain list, misses, 1 connection", "list-miss-1"),
        ("facet list, misses, 1 connection", "facets-miss-1"),
        ("facet list + option filters, misses, 1 connection", "filtered-miss-1")]
ceiling = wrk("healthz")[0]
print(f"{sys.argv[2]} products")
print("| path | req/s | p50 ms | p99 ms | × /healthz | non-2xx |")
print("|---|---|---|---|---|---|")
for title, key in rows:
    rps, p50, p99, bad = wrk(key)
    print(f"| {title} | {rps:,.0f} | {p50:.2f} | {p99:.2f} | {rps / ceiling:.3f} | {bad} |")
PY
rm -rf "$OUT"
