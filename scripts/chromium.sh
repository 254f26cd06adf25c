# Sourced by scripts/test: Debian's Chromium for the browser tests, installed when missing.
# Sets COOPFUND_TEST_CHROMIUM.
if ! command -v chromium >/dev/null; then
  echo "Chromium is missing: installing it with apt-get"
  as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
COOPFUND_TEST_CHROMIUM=$(command -v chromium) || { echo "error: Chromium could not be installed" >&2; exit 1; }
export COOPFUND_TEST_CHROMIUM
