# Sourced by scripts/test: Debian's Chromium and its ChromeDriver for the browser tests,
# installed when missing. Sets COOPFUND_TEST_CHROMIUM and COOPFUND_TEST_CHROMEDRIVER.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  echo "Chromium or ChromeDriver is missing: installing them with apt-get"
  as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
fi
COOPFUND_TEST_CHROMIUM=$(command -v chromium) || { echo "error: Chromium could not be installed" >&2; exit 1; }
COOPFUND_TEST_CHROMEDRIVER=$(command -v chromedriver) || { echo "error: ChromeDriver could not be installed" >&2; exit 1; }
export COOPFUND_TEST_CHROMIUM COOPFUND_TEST_CHROMEDRIVER
