#!/usr/bin/env bash
# Prints a wrk script placing orders of one random product from IDS (a
# comma-separated list of quoted ids) each; with `keyed`, each with its own
# Idempotency-Key, unique per wrk process (a nonce and its start time),
# thread and request.
#   scripts/orders-lua.sh ACCESS_TOKEN IDS [keyed] > orders.lua
# With LINE_KEY=variant_id, IDS are variant ids (products with variants
# are ordered by variant).
set -euo pipefail
ACCESS=$1
IDS=$2
KEY_HEADER=""
[ "${3:-}" = keyed ] && KEY_HEADER=', ["Idempotency-Key"] = key'
LINE_KEY=${LINE_KEY:-product_id}
# SHIPPING_METHOD names the method charged, where the shop has shipping rules.
SHIPPING=""
[ -n "${SHIPPING_METHOD:-}" ] && SHIPPING=",\"shipping_method_id\":\"$SHIPPING_METHOD\""
NONCE=$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
cat <<LUA
local ids = {$IDS}
local address = '"shipping_address":{"name":"Load","line1":"1 Bench St","city":"Lyon","postal_code":"69001","country":"FR"}$SHIPPING'
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
local counter = 0
local started = nil
request = function()
  started = started or tostring(os.time())
  counter = counter + 1
  local key = "$NONCE-" .. started .. "-" .. tostring(tid) .. "-" .. counter
  local body = '{"items":[{"$LINE_KEY":"' .. ids[math.random(#ids)] .. '","quantity":1}],' .. address .. '}'
  return wrk.format("POST", "/api/v1/orders/", {["Content-Type"] = "application/json", ["Authorization"] = "Bearer $ACCESS"$KEY_HEADER}, body)
end
LUA
