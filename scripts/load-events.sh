#!/usr/bin/env bash
# Events out under load: POST /orders/ with wrk twice in one run, first with
# the relays idle (events still written to the outboxes, nobody subscribed,
# no broker), then with a webhook subscriber to "*" (a local receiver,
# examples/event_sink.rs) and the RabbitMQ relay on (a consumer bound to
# "#"). Reports both order rates, the events each sink received per second
# during the loaded run, and how long the backlog took to drain after it.
# Needs wrk, PostgreSQL, Redis and RabbitMQ (guest/guest) on localhost.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/instance.sh
PRODUCTS=${PRODUCTS:-2000}
AMQP_URL=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}
EXCHANGE="bench.events.$PREFIX"
HOOK_PORT=${HOOK_PORT:-9911}
cargo build --release --example event_sink >/dev/null
SINK=./target/release/examples/event_sink
LUA=$(mktemp --suffix=.lua)
HOOK_LOG=$(mktemp)
AMQP_LOG=$(mktemp)
TEMP_FILES+=("$LUA" "$HOOK_LOG" "$AMQP_LOG")
SINK_PIDS=()
stop_sinks() { for pid in "${SINK_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; cleanup; }
trap stop_sinks EXIT

psql_in() { psql -h 127.0.0.1 -U postgres -Atc "$2" "${PREFIX}_$1"; }
# Events in every outbox, and those a sink has not taken yet.
events_total() {
  local n=0
  for d in auth catalog orders payments; do n=$((n + $(psql_in "$d" "SELECT count(*) FROM event_outbox"))); done
  echo "$n"
}
pending() {
  local n=0
  for d in auth catalog orders payments; do
    n=$((n + $(psql_in "$d" "SELECT count(*) FROM event_outbox WHERE $1 IS NULL"))); done
  echo "$n"
}
last_count() { tail -n 1 "$1" | cut -d' ' -f2; }
login() {
  curl -fsS -XPOST "$1/api/v1/auth/login/" -H 'content-type: application/json' \
    -d "{\"email\":\"$2\",\"password\":\"load test password\"}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access"])'
}

start_instance BASE
./target/release/emporium seed-demo --products "$PRODUCTS" --customers 0 --seed 42 >/dev/null
curl -fsS -XPOST "$BASE/api/v1/auth/register/" -H 'content-type: application/json' \
  -d '{"email":"buyer@example.com","password":"load test password"}' >/dev/null
./target/release/emporium create-admin --email admin@example.com --password "load test password" >/dev/null
ACCESS=$(login "$BASE" buyer@example.com)
# The demo shop's first method to France, charged on every order.
METHOD=$(psql -h 127.0.0.1 -U postgres -Atc "SELECT m.id FROM shipping_methods m JOIN shipping_zones z ON z.id = m.zone_id WHERE 'FR' = ANY (z.countries) AND m.is_active AND m.currency = 'EUR' ORDER BY m.name LIMIT 1" "${PREFIX}_orders")
# Variants with stock of the dearest in-stock products, ordered by variant.
IDS=$(curl -fsS "$BASE/api/v1/products/?in_stock=true&page_size=100&ordering=-price" \
  | python3 -c 'import json,sys; print(",".join(chr(34)+v["id"]+chr(34) for p in json.load(sys.stdin)["results"] for v in p["variants"] if v["stock"] >= 20))')
SHIPPING_METHOD=$METHOD LINE_KEY=variant_id scripts/orders-lua.sh "$ACCESS" "$IDS" >"$LUA"

run "GET /healthz" "$BASE/healthz"
before=$(events_total)
run "POST /api/v1/orders/ (relays idle)" -s "$LUA" "$BASE/api/v1/orders/"
echo "events per order: $(python3 -c "print(round(($(events_total) - $before) / max(1, $(psql_in orders 'SELECT count(*) FROM orders')), 2))")"

# The second instance relays to both sinks; the first one stops.
kill "${INSTANCE_PIDS[0]}"; wait "${INSTANCE_PIDS[0]}" 2>/dev/null || true
"$SINK" http "$HOOK_PORT" >"$HOOK_LOG" & SINK_PIDS+=($!)
"$SINK" amqp "$AMQP_URL" "$EXCHANGE" >"$AMQP_LOG" & SINK_PIDS+=($!)
# What happened before this run is not part of it.
for d in auth catalog orders payments; do
  psql_in "$d" "UPDATE event_outbox SET amqp_relayed_at = now(), webhooks_relayed_at = now() WHERE amqp_relayed_at IS NULL OR webhooks_relayed_at IS NULL" >/dev/null
done
start_instance BASE2 EMPORIUM__EVENTS__AMQP_URL="$AMQP_URL" EMPORIUM__EVENTS__EXCHANGE="$EXCHANGE" \
  EMPORIUM__WEBHOOKS__ALLOW_LOOPBACK_HTTP=true
ADMIN=$(login "$BASE2" admin@example.com)
curl -fsS -XPOST "$BASE2/api/v1/webhooks/" -H 'content-type: application/json' \
  -H "authorization: Bearer $ADMIN" \
  -d "{\"url\":\"http://127.0.0.1:$HOOK_PORT/hook\",\"events\":[\"*\"]}" >/dev/null
sleep 2
ACCESS=$(login "$BASE2" buyer@example.com)
# The next hundred products: as many units as the first run had, unsold.
IDS=$(curl -fsS "$BASE2/api/v1/products/?in_stock=true&page_size=100&ordering=-price&page=2" \
  | python3 -c 'import json,sys; print(",".join(chr(34)+v["id"]+chr(34) for p in json.load(sys.stdin)["results"] for v in p["variants"] if v["stock"] >= 20))')
SHIPPING_METHOD=$METHOD LINE_KEY=variant_id scripts/orders-lua.sh "$ACCESS" "$IDS" >"$LUA"
hook0=$(last_count "$HOOK_LOG"); amqp0=$(last_count "$AMQP_LOG"); events0=$(events_total)
start=$(date +%s.%N)
run "POST /api/v1/orders/ (webhooks + RabbitMQ)" -s "$LUA" "$BASE2/api/v1/orders/"
end=$(date +%s.%N)
sleep 1.2
hook1=$(last_count "$HOOK_LOG"); amqp1=$(last_count "$AMQP_LOG"); events1=$(events_total)
echo "backlog at the end of the run: webhooks $(pending webhooks_relayed_at) events not fanned out, amqp $(pending amqp_relayed_at) not confirmed"
secs=$(python3 -c "print($end - $start)")
python3 - "$secs" "$((events1 - events0))" "$((hook1 - hook0))" "$((amqp1 - amqp0))" <<'PY'
import sys
secs, made, hook, amqp = float(sys.argv[1]), *map(int, sys.argv[2:])
print(f"events made during the run: {made} ({made / secs:.0f}/s)")
print(f"webhook deliveries received: {hook} ({hook / secs:.0f}/s, {hook / max(made, 1):.2f} of made)")
print(f"RabbitMQ messages received: {amqp} ({amqp / secs:.0f}/s, {amqp / max(made, 1):.2f} of made)")
PY
drain_start=$(date +%s.%N)
for _ in $(seq 1 600); do
  [ "$(pending webhooks_relayed_at)" = 0 ] && [ "$(pending amqp_relayed_at)" = 0 ] &&
    [ "$(psql_in webhooks "SELECT count(*) FROM deliveries WHERE status = 'pending'")" = 0 ] && break
  sleep 0.1
done
echo "drained after the run in $(python3 -c "print(round($(date +%s.%N) - $drain_start, 2))") s"
sleep 1.2
echo "received in all: webhooks $(( $(last_count "$HOOK_LOG") - hook0 )), RabbitMQ $(( $(last_count "$AMQP_LOG") - amqp0 )), events made $((events1 - events0))"
