# Shared by the load scripts: source it, then call start_instance.
# Every instance of one run shares PREFIX (its own databases and Redis keys);
# everything is stopped and dropped when the script exits.

PREFIX="bench_$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export EMPORIUM__DATABASE__PREFIX=$PREFIX
export EMPORIUM__HTTP__PORT=0
export EMPORIUM__HTTP__WORKERS=${WORKERS:-2}
export EMPORIUM__LOG__LEVEL=${LOG_LEVEL:-error}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
INSTANCE_PIDS=()
INSTANCE_LOGS=()
TEMP_FILES=()

cleanup() {
  for pid in "${INSTANCE_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${INSTANCE_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  for d in auth catalog orders payments carts webhooks notifications; do
    psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS ${PREFIX}_$d WITH (FORCE)" postgres >/dev/null || true
  done
  rm -f "${INSTANCE_LOGS[@]}" "${TEMP_FILES[@]}"
}
trap cleanup EXIT

# A caller that names its binary (EMPORIUM_BIN) has built it.
[ -n "${EMPORIUM_BIN:-}" ] || cargo build --release --bin emporium >/dev/null

# start_instance NAME [VAR=value ...]: starts `emporium serve` with extra
# environment, waits until it listens, and sets the variable NAME to its
# base URL; EMPORIUM_BIN picks another binary. (No command substitution: the instance must be started by this
# shell so that cleanup can stop it.)
start_instance() {
  local name=$1
  shift
  local log
  log=$(mktemp)
  INSTANCE_LOGS+=("$log")
  env "$@" "${EMPORIUM_BIN:-./target/release/emporium}" serve >"$log" 2>&1 &
  INSTANCE_PIDS+=($!)
  for _ in $(seq 1 150); do
    grep -q "listening on" "$log" && break
    sleep 0.2
  done
  local base
  base=$(grep -o "http://[0-9.]*:[0-9]*" "$log" | head -n 1 || true)
  [ -n "$base" ] || { cat "$log" >&2; exit 1; }
  printf -v "$name" '%s' "$base"
}

# run TITLE WRK-ARGS...: one wrk run, summarised.
run() {
  echo "== $1"
  shift
  wrk --latency -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" "$@" | grep -E "Requests/sec|99%|Non-2xx|Socket errors"
}
