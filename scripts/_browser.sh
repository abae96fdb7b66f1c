# Sourced by scripts/test: the browser test drives Debian's chromium and
# chromedriver (no browser download). Install them when missing and we may
# (root with apt, as in CI); otherwise say what the browser test will need.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing chromium and chromium-driver for the browser test" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
    else
        echo "warning: tests/acceptance/test_web_browser.py needs chromium and chromedriver;" \
             "install them with: sudo apt-get install chromium chromium-driver" >&2
    fi
fi
