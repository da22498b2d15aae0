#!/usr/bin/env bash
# Load run for carts: `GET /cart/` of a cart with 5 lines (every read prices
# the lines from the catalog), the same cart with a shipping method and
# address chosen (shipping and tax priced on every read), and checkout (add
# a line, then check out), measured with wrk beside /healthz and beside
# `POST /orders/` of the same one-line orders in the same run.
# Checkout: USERS customers, each request taking the next one in turn and
# alternating add-a-line / checkout (a checkout trails its add by 48
# customers, so it never races it); the checkout rate is the orders the
# stream wrote over its duration, and the orders rate the same for the
# `POST /orders/` stream. Needs wrk, PostgreSQL and Redis on localhost.
set -euo pipefail
cd "$(dirname "$0")/.."
export EMPORIUM__RATE_LIMIT__REGISTER_PER_CLIENT=100000
export EMPORIUM__RATE_LIMIT__LOGIN_PER_CLIENT=100000
source scripts/instance.sh
USERS=${USERS:-256}
LUA=$(mktemp --suffix=.lua)
TEMP_FILES+=("$LUA")

start_instance BASE
"${EMPORIUM_BIN:-./target/release/emporium}" seed-demo --products 200 --customers 0 --seed 42 >/dev/null
# Checkouts and orders measure the write path, not products selling out:
# every level gets a million more units (written before any read, so
# nothing cached predates it).
psql -h 127.0.0.1 -U postgres -q "${PREFIX}_catalog" <<'SQL'
UPDATE stock_levels SET on_hand = on_hand + 1000000;
UPDATE product_variants v SET stock = (SELECT coalesce(sum(l.on_hand - l.held), 0)
  FROM stock_levels l JOIN stock_locations s ON s.id = l.location_id
  WHERE l.variant_id = v.id AND s.is_active);
UPDATE products p SET stock = (SELECT coalesce(sum(v.stock), 0) FROM product_variants v WHERE v.product_id = p.id);
SQL

token() {
  curl -fsS -XPOST "$BASE/api/v1/auth/register/" -H 'content-type: application/json' \
    -d "{\"email\":\"$1\",\"password\":\"load test password\"}" >/dev/null
  curl -fsS -XPOST "$BASE/api/v1/auth/login/" -H 'content-type: application/json' \
    -d "{\"email\":\"$1\",\"password\":\"load test password\"}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access"])'
}
# Variants with stock, for the checkout and order streams (a product with
# several variants is added and ordered by variant).
VARIANTS=$(curl -fsS "$BASE/api/v1/products/?in_stock=true&page_size=100&ordering=-price" |
  python3 -c 'import json,sys; print(" ".join(v["id"] for p in json.load(sys.stdin)["results"] for v in p["variants"] if v["stock"] >= 20))')
read -r -a VARIANT_IDS <<<"$VARIANTS"

READER=$(token reader@example.com)
for id in "${VARIANT_IDS[@]:0:5}"; do
  curl -fsS -XPOST "$BASE/api/v1/cart/items/" -H 'content-type: application/json' \
    -H "authorization: Bearer $READER" -d "{\"variant_id\":\"$id\",\"quantity\":1}" >/dev/null
done

TOKENS=""
for i in $(seq 1 "$USERS"); do
  TOKENS+="\"$(token "buyer$i@example.com")\","
done
QUOTED=$(printf '"%s",' "${VARIANT_IDS[@]}")
# seed-demo's EU "Standard" method: checkout needs one once the shop ships.
CHECKOUT_METHOD=$(curl -fsS "$BASE/api/v1/cart/shipping-methods/?country=FR&postal_code=69001" \
  -H "authorization: Bearer $READER" |
  python3 -c 'import json,sys; print(next(m["method_id"] for m in json.load(sys.stdin) if m["name"] == "Standard"))')

cat >"$LUA" <<LUA
-- Each wrk thread takes its own half of the customers and walks them in
-- turn, alternating adds and checkouts. A checkout goes to the customer
-- whose add was sent LAG customers earlier: a thread's connections run
-- side by side, so checking out the cart just added to would race its add
-- (and often find it empty); LAG customers later, with 16 connections a
-- thread, that add has long been answered.
local LAG = 48
local tokens = {$TOKENS}
local ids = {$QUOTED}
local address = '{"shipping_address":{"name":"Load","line1":"1 Bench St","city":"Lyon","postal_code":"69001","country":"FR"},"shipping_method_id":"$CHECKOUT_METHOD"}'
local threads = {}
local next_id = 0
function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end
local n = 0
statuses = {}
request = function()
  n = n + 1
  local half = math.floor(#tokens / 2)
  local turn = math.floor(n / 2)
  local user = id * half + turn % half + 1
  if n % 2 == 1 then
    user = id * half + (turn - LAG) % half + 1
  end
  local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. tokens[user]}
  if n % 2 == 0 then
    local body = '{"variant_id":"' .. ids[math.random(#ids)] .. '","quantity":1}'
    return wrk.format("POST", "/api/v1/cart/items/", headers, body)
  end
  return wrk.format("POST", "/api/v1/cart/checkout/", headers, address)
end
response = function(status, headers, body)
  local key = tostring(status)
  if status == 409 or status == 422 then
    key = key .. " " .. (string.match(body, '"code":"([a-z_]+)"') or "?")
  end
  statuses[key] = (statuses[key] or 0) + 1
end
done = function(summary, latency, requests)
  local totals = {}
  for _, thread in ipairs(threads) do
    for k, v in pairs(thread:get("statuses")) do totals[k] = (totals[k] or 0) + v end
  end
  for k, v in pairs(totals) do io.write(string.format("  status %s: %d\n", k, v)) end
end
LUA

run "GET /healthz" "$BASE/healthz"
run "GET /api/v1/cart/ (5 lines)" -H "Authorization: Bearer $READER" "$BASE/api/v1/cart/"

# The same cart with shipping and tax: seed-demo made the EU zone, its
# methods and French rates; the reader chooses the cheapest method to Lyon.
METHOD=$(curl -fsS "$BASE/api/v1/cart/shipping-methods/?country=FR&postal_code=69001" \
  -H "authorization: Bearer $READER" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["method_id"])')
curl -fsS -XPUT "$BASE/api/v1/cart/shipping/" -H 'content-type: application/json' \
  -H "authorization: Bearer $READER" -d "{\"method_id\":\"$METHOD\",\"address\":{\"name\":\"Load\",
  \"line1\":\"1 Bench St\",\"city\":\"Lyon\",\"postal_code\":\"69001\",\"country\":\"FR\"}}" |
  python3 -c 'import json,sys; c=json.load(sys.stdin); print("cart with charges: shipping", c["shipping"]["amount"], "tax", c["tax"], "total", c["total"])'
run "GET /api/v1/cart/ (5 lines, shipping and tax)" -H "Authorization: Bearer $READER" "$BASE/api/v1/cart/"
orders() { psql -h 127.0.0.1 -U postgres -Atc "SELECT count(*) FROM orders" "${PREFIX}_orders"; }
SECONDS_RUN=${DURATION%s}
echo "== add a line + checkout, alternating"
BEFORE=$(orders)
wrk --latency -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s "$LUA" "$BASE/api/v1/cart/" |
  grep -E "Requests/sec|99%|status"
CHECKOUTS=$(($(orders) - BEFORE))
echo "checkouts placed: $CHECKOUTS ($(python3 -c "print(round($CHECKOUTS / $SECONDS_RUN, 1))")/s)"

# The same one-line orders placed directly, by one customer.
ORDERS_LUA=$(mktemp --suffix=.lua)
TEMP_FILES+=("$ORDERS_LUA")
SHIPPING_METHOD=$CHECKOUT_METHOD LINE_KEY=variant_id scripts/orders-lua.sh "$(token direct@example.com)" \
  "$(printf '"%s",' "${VARIANT_IDS[@]}")" >"$ORDERS_LUA"
BEFORE=$(orders)
run "POST /api/v1/orders/ (one line)" -s "$ORDERS_LUA" "$BASE/api/v1/orders/"
DIRECT=$(($(orders) - BEFORE))
echo "orders placed: $DIRECT ($(python3 -c "print(round($DIRECT / $SECONDS_RUN, 1))")/s)"
echo "checkout / POST /orders/: $(python3 -c "print(round($CHECKOUTS / max($DIRECT, 1), 2))")"
