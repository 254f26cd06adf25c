# Shared by the benchmark scripts: build, start and measure on loopback only.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/coopfund-target}
BIN=$CARGO_TARGET_DIR/release
WORK=$(mktemp -d /tmp/coopfund-bench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

need() { command -v "$1" >/dev/null || { apt-get install -y -qq "$2" >/dev/null || { apt-get update -qq && apt-get install -y -qq "$2" >/dev/null; }; }; }

build() { (cd "$ROOT" && cargo build --release --quiet --bin coopfund --examples); }

wait_http() { for _ in $(seq 100); do curl -sf -o /dev/null "$1" && return 0; sleep 0.1; done; echo "no answer from $1" >&2; exit 1; }

# Servers run on core 0 and the load on core 1, so that neither steals the other's time
# and every service measured in a run gets the same single core.
SERVER_CPU=(taskset -c 0)
LOAD_CPU=(taskset -c 1)

# rps URL [extra wrk args…]: requests per second over a bounded run.
rps() {
  local url=$1; shift
  "${LOAD_CPU[@]}" wrk -t1 -c"${CONNECTIONS:-32}" -d"${DURATION:-5}s" "$@" "$url" | awk '/Requests\/sec/ {print $2}'
}

ratio() { python3 -c "print(f'{$1/$2:.3f}')"; }
