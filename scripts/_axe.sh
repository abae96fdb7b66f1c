# Sourced by scripts/test: the browser tests inject axe-core (the accessibility
# checker) into each page; it comes from npm into .axe/ (ignored by git) the first
# time tests/support/axe.py needs it. Node and npm: installed here when missing and
# we may (root with apt, as in CI); otherwise say what the browser tests will need.
if ! command -v npm >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing nodejs and npm for the browser tests' accessibility checks" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
    else
        echo "warning: tests/acceptance/test_web_browser.py needs npm (for axe-core);" \
             "install it with: sudo apt-get install nodejs npm" >&2
    fi
fi
