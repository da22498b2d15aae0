#!/usr/bin/env bash
# Opens GET /api/docs/ of a fresh instance in headless Chromium, with every
# host but the instance's unreachable (as on an air-gapped deployment), and
# checks that Redoc rendered the operations. Installs Debian's chromium if
# it is missing. SCREENSHOT=path also saves a picture of the page.
#
#   scripts/check-docs-page.sh
#   SCREENSHOT=docs/api-docs.png scripts/check-docs-page.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null; then
  echo "installing Debian's chromium"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

cargo build --quiet --bin emporium
export EMPORIUM_BIN=./target/debug/emporium
# shellcheck source=scripts/instance.sh
source scripts/instance.sh
start_instance BASE

PROFILE=$(mktemp -d)
TEMP_FILES+=("$PROFILE/dom.html" "$PROFILE/console.log")
# Only the instance resolves; anything else the page tried to load would fail.
browse() {
  chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage \
    --user-data-dir="$PROFILE" \
    --host-resolver-rules="MAP * ~NOTFOUND, EXCLUDE 127.0.0.1" \
    --virtual-time-budget=15000 --window-size=1280,900 "$@" "$BASE/api/docs/"
}
browse --enable-logging=stderr --v=0 --dump-dom >"$PROFILE/dom.html" 2>"$PROFILE/console.log" || true

operations=$(grep -o 'operation/[a-z_]*' "$PROFILE/dom.html" | sort -u | wc -l)
expected=$(curl -sf "$BASE/api/v1/openapi.json" |
  python3 -c 'import json,sys; d=json.load(sys.stdin); print(sum(1 for p in d["paths"].values() for m in p if m in ("get","post","put","patch","delete")))')
# Redoc's side menu links its maker's logo from their CDN; the policy blocks
# it (as it would block anything else from elsewhere), which costs a picture.
violations=$(grep -i "content security policy" "$PROFILE/console.log" | grep -vc "cdn.redoc.ly/redoc/logo-mini.svg" || true)
echo "docs page: $operations of $expected operations rendered; $violations CSP violations"
if ! grep -q "Places an order" "$PROFILE/dom.html" || [ "$operations" -lt "$expected" ] || [ "$violations" -gt 0 ]; then
  grep -i "content security policy" "$PROFILE/console.log" | head -20 >&2 || true
  echo "the docs page did not render every operation offline" >&2
  rm -rf "$PROFILE"
  exit 1
fi
if [ -n "${SCREENSHOT:-}" ]; then
  browse --screenshot="$PWD/$SCREENSHOT" >/dev/null 2>&1 || true
  echo "screenshot: $SCREENSHOT"
fi
rm -rf "$PROFILE"
