# Sourced by the scripts: make ./.venv with the project and its test extras, then activate it.
# Reinstalls only when a pyproject.toml changed since the last install.
set -euo pipefail
VENV="${APPLIANCE_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
    echo "creating the virtual environment in $VENV" >&2
    python3 -m venv "$VENV"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"
PLUGIN=plugins/snakemake-logger-plugin-appliance
if [ ! -f "$VENV/.installed" ] || [ pyproject.toml -nt "$VENV/.installed" ] \
        || [ "$PLUGIN/pyproject.toml" -nt "$VENV/.installed" ]; then
    echo "installing the appliance, the Snakemake logger plugin and the test dependencies into $VENV" >&2
    python -m pip install --quiet --disable-pip-version-check -e '.[test]' -e "$PLUGIN"
    touch "$VENV/.installed"
fi
