# Sourced by the scripts: make ./.venv, install what the caller needs, then activate it.
#   . scripts/_venv.sh runtime   the appliance and what it runs on (requirements.lock)
#   . scripts/_venv.sh test      that, the test dependencies and the Snakemake logger plugin
#                                (requirements-test.lock)
# Exact versions with their hashes, from the lock files (how to update them: docs/deploy.md,
# "Dependencies"). Installs again only when a lock file or a pyproject.toml changed since.
set -euo pipefail
VENV="${APPLIANCE_VENV:-.venv}"
VENV_SET="${1:-test}"
PLUGIN=plugins/snakemake-logger-plugin-appliance
case "$VENV_SET" in
    runtime) LOCK=requirements.lock ;;
    test) LOCK=requirements-test.lock ;;
    *) echo "_venv.sh: runtime or test, not $VENV_SET" >&2; exit 2 ;;
esac
if [ ! -x "$VENV/bin/python" ]; then
    echo "creating the virtual environment in $VENV" >&2
    python3 -m venv "$VENV"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"

venv_is_current() {  # $1: the set; fresh when installed after every file it comes from
    local mark="$VENV/.installed-$1" source
    [ -f "$mark" ] || return 1
    for source in pyproject.toml "$PLUGIN/pyproject.toml" requirements*.lock; do
        [ "$source" -nt "$mark" ] && return 1
    done
    return 0
}

if ! venv_is_current "$VENV_SET" && ! { [ "$VENV_SET" = runtime ] && venv_is_current test; }; then
    echo "installing the pinned dependencies of $LOCK into $VENV" >&2
    progress=()
    [ -t 2 ] || progress=(--progress-bar off)  # no bars in a log file, but one line per package
    # --no-compile: no .pyc for every module of every package now (a third of the time);
    # Python writes them for what it imports, when it first does.
    python -m pip install --disable-pip-version-check "${progress[@]}" --no-compile --require-hashes \
        -r "$LOCK" -r requirements-build.lock >&2
    editable=(-e .)
    [ "$VENV_SET" = test ] && editable+=(-e "$PLUGIN")
    echo "installing the appliance${editable[2]:+ and the Snakemake logger plugin} into $VENV (editable)" >&2
    # With the locked setuptools just installed: no isolated build environment to make first.
    python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation "${editable[@]}"
    touch "$VENV/.installed-$VENV_SET"
fi
