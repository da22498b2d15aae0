#!/usr/bin/env bash
# Fuzzes a running instance against its own OpenAPI document with
# Schemathesis: every check, examples + coverage + fuzzing phases, bounded.
# Authenticated routes are fuzzed with an admin's token; the document's
# security schemes tell Schemathesis which routes must refuse no token.
#
#   scripts/fuzz-api.sh            # debug build, 50 examples per operation
#   MAX_EXAMPLES=200 scripts/fuzz-api.sh
#
# Schemathesis comes from PyPI into a virtualenv under target/ (made once).
# Exit status: non-zero when any check failed. The report is written to
# target/schemathesis/.
set -euo pipefail
cd "$(dirname "$0")/.."

MAX_EXAMPLES=${MAX_EXAMPLES:-50}
SCHEMATHESIS_VERSION=${SCHEMATHESIS_VERSION:-4.32.5}
VENV=target/fuzz-venv
REPORT_DIR=target/schemathesis

if [ ! -x "$VENV/bin/schemathesis" ]; then
  echo "installing Schemathesis $SCHEMATHESIS_VERSION into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

cargo build --quiet --bin emporium
export EMPORIUM_BIN=./target/debug/emporium
# Fuzzing sends far more logins and sign-ups than a person would; the
# limits themselves are tested elsewhere.
export EMPORIUM__RATE_LIMIT__LOGIN_PER_CLIENT=100000
export EMPORIUM__RATE_LIMIT__LOGIN_PER_EMAIL_CLIENT=100000
export EMPORIUM__RATE_LIMIT__LOGIN_PER_EMAIL=100000
export EMPORIUM__RATE_LIMIT__REGISTER_PER_CLIENT=100000
export EMPORIUM__RATE_LIMIT__PASSWORD_PER_USER=100000
export EMPORIUM__RATE_LIMIT__GUEST_CARTS_PER_CLIENT=100000
export EMPORIUM__RATE_LIMIT__GUEST_CHECKOUTS_PER_CLIENT=100000
export EMPORIUM__PAYMENTS__FAILED_ATTEMPTS_PER_ORDER=100000
export EMPORIUM__PAYMENTS__FAILED_ATTEMPTS_PER_CUSTOMER=100000
# shellcheck source=scripts/instance.sh
source scripts/instance.sh

start_instance BASE
ADMIN_EMAIL="fuzz-admin@example.com"
ADMIN_PASSWORD="fuzz-admin-password-1"
"$EMPORIUM_BIN" create-admin --email "$ADMIN_EMAIL" --password "$ADMIN_PASSWORD" >/dev/null
access_token() {
  curl -sf "$BASE/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"email\":\"$1\",\"password\":\"$2\"}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access"])'
}
FUZZ_ADMIN_TOKEN=$(access_token "$ADMIN_EMAIL" "$ADMIN_PASSWORD")
customer_token() {
  curl -sf "$BASE/api/v1/auth/register" -H 'content-type: application/json' \
    -d "{\"email\":\"$1\",\"password\":\"fuzz-customer-password-1\"}" >/dev/null
  access_token "$1" fuzz-customer-password-1
}
FUZZ_LOGOUT_TOKEN=$(customer_token fuzz-logout@example.com)
FUZZ_PASSWORD_TOKEN=$(customer_token fuzz-password@example.com)

# One of each resource, so that operations on an id reach their logic (and
# their answers are checked against the document) instead of a 404.
# post PATH JSON: the created resource's id.
post() {
  curl -sf "$BASE/api/v1/$1" -H 'content-type: application/json' \
    -H "authorization: Bearer $FUZZ_ADMIN_TOKEN" -d "$2" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'
}
FUZZ_CATEGORY_ID=$(post categories '{"name":"Fuzzed"}')
FUZZ_PRODUCT_ID=$(post products "{\"name\":\"Fuzzed lamp\",\"sku\":\"FUZZ-1\",\"price\":1999,
  \"currency\":\"EUR\",\"stock\":1000000,\"category_id\":\"$FUZZ_CATEGORY_ID\"}")
FUZZ_ORDER_ID=$(post orders "{\"items\":[{\"product_id\":\"$FUZZ_PRODUCT_ID\",\"quantity\":1}],
  \"shipping_address\":{\"name\":\"Ada\",\"line1\":\"1 Rue\",\"city\":\"Paris\",
  \"postal_code\":\"75001\",\"country\":\"FR\"}}")
FUZZ_PAYMENT_ID=$(post payments "{\"order_id\":\"$FUZZ_ORDER_ID\",\"payment_method\":
  {\"card_number\":\"4242424242424242\",\"exp_month\":12,\"exp_year\":$(($(date +%Y) + 2)),\"cvc\":\"123\"}}")
FUZZ_ADDRESS_ID=$(post auth/me/addresses '{"name":"Ada","line1":"1 Rue","city":"Paris",
  "postal_code":"75001","country":"FR"}')
FUZZ_PROMOTION_ID=$(post promotions '{"code":"FUZZ-10","kind":"percent","value":10}')
FUZZ_ZONE_ID=$(post shipping/zones '{"name":"Fuzz zone","countries":["FR"]}')
FUZZ_METHOD_ID=$(post shipping/methods "{\"zone_id\":\"$FUZZ_ZONE_ID\",\"name\":\"Fuzz post\",
  \"currency\":\"EUR\",\"rate\":{\"kind\":\"flat\",\"amount\":490}}")
FUZZ_RATE_ID=$(post tax/rates '{"tax_class":"standard","country":"FR","rate_bp":2000}')
FUZZ_LOCATION_ID=$(post stock-locations '{"name":"Fuzz depot","country":"FR","priority":-1}')
FUZZ_WEBHOOK_ID=$(post webhooks '{"url":"https://hooks.example.com/fuzz","events":["*"]}')
read -r FUZZ_GUEST_CART_ID FUZZ_GUEST_CART_TOKEN < <(curl -sf -X POST "$BASE/api/v1/carts" |
  python3 -c 'import json,sys; c=json.load(sys.stdin); print(c["id"], c["token"])')
# The account admins' user routes act on (it may be deactivated).
FUZZ_USER_ID=$(curl -sf "$BASE/api/v1/auth/me" \
  -H "authorization: Bearer $(customer_token fuzz-managed@example.com)" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
export FUZZ_ADMIN_TOKEN FUZZ_LOGOUT_TOKEN FUZZ_PASSWORD_TOKEN
export FUZZ_CATEGORY_ID FUZZ_PRODUCT_ID FUZZ_ORDER_ID FUZZ_PAYMENT_ID FUZZ_USER_ID
export FUZZ_PROMOTION_ID FUZZ_GUEST_CART_ID FUZZ_GUEST_CART_TOKEN FUZZ_ADDRESS_ID
export FUZZ_ZONE_ID FUZZ_METHOD_ID FUZZ_RATE_ID FUZZ_LOCATION_ID FUZZ_WEBHOOK_ID

echo "fuzzing $BASE with Schemathesis ($MAX_EXAMPLES examples per operation)"
"$VENV/bin/schemathesis" --config-file scripts/schemathesis.toml run "$BASE/api/v1/openapi.json" \
  --url "$BASE" \
  --checks all \
  --phases examples,coverage,fuzzing \
  --max-examples "$MAX_EXAMPLES" \
  --seed "${SEED:-1}" \
  --request-timeout 15 \
  --report junit --report-dir "$REPORT_DIR" \
  --no-color
