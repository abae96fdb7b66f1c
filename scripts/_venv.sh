# Sourced by the scripts: make ./.venv with the project and its test extras, then activate it.
# Reinstalls only when pyproject.toml changed since the last install.
set -euo pipefail
VENV="${APPLIANCE_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
    echo "creating the virtual environment in $VENV" >&2
    python3 -m venv "$VENV"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"
if [ ! -f "$VENV/.installed" ] || [ pyproject.toml -nt "$VENV/.installed" ]; then
    echo "installing the appliance and its test dependencies into $VENV" >&2
    python -m pip install --quiet --disable-pip-version-check -e '.[test]'
    touch "$VENV/.installed"
fi
