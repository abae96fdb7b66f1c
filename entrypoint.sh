#!/usr/bin/env bash
# Start the appliance: check the environment, wait for the database, migrate it
# and install the triggers (`appliance init`), then run web, monitor and
# projector under supervisord in the foreground.
#
#   entrypoint.sh                  start the appliance (the image's default)
#   entrypoint.sh status           every part's state: database, schema, projector, monitors, programs
#   entrypoint.sh supervisorctl …  any supervisorctl command
#   entrypoint.sh shell [ARGS]     bash
#   entrypoint.sh COMMAND …        one `appliance COMMAND` (migrate, init, reproject, …)
#
# Exit codes: 0 stopped by SIGTERM or SIGINT; 1 a program could not be started
# (supervisor marked it FATAL) or a start-up step failed; 2 the environment is
# invalid; 3 the database did not answer within DB_WAIT_TIMEOUT seconds.
set -euo pipefail

APP_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$APP_DIR"
if ! command -v appliance >/dev/null && [ -x .venv/bin/appliance ]; then
    PATH="$APP_DIR/.venv/bin:$PATH"  # a checkout whose virtualenv is not activated
fi
# Read by conf/supervisord.conf; the validation of ENABLE_DB_MONITORING is `appliance config`'s.
export APPLIANCE_RUN_DIR="${APPLIANCE_RUN_DIR:-/tmp/appliance-$(id -u)}"
export ENABLE_DB_MONITORING="${ENABLE_DB_MONITORING:-true}"
export PYTHONUNBUFFERED=1
CONF="$APP_DIR/conf/supervisord.conf"
FATAL_MARKER="$APPLIANCE_RUN_DIR/fatal"

case "${1:-start}" in
    start) ;;
    supervisorctl) shift; exec supervisorctl -c "$CONF" "$@" ;;
    shell) shift; exec bash "$@" ;;
    appliance) shift; exec appliance "$@" ;;
    *) exec appliance "$@" ;;
esac

say() { echo "entrypoint: $*" >&2; }

# Each step runs in the background so that a SIGTERM (docker stop) reaches it at
# once; bash would otherwise wait for a foreground step to end before its trap.
child=""
trap 'if [ -n "$child" ]; then kill -TERM "$child" 2>/dev/null || true; fi' TERM INT
step() {
    local status=0
    "$@" &
    child=$!
    wait "$child" || status=$?
    while kill -0 "$child" 2>/dev/null; do  # a trapped signal interrupted the wait
        status=0
        wait "$child" || status=$?
    done
    child=""
    return "$status"
}

say "checking the environment"
step appliance config
step appliance wait-for-db
say "migrating the database and installing the triggers"
step appliance init
mkdir -p -m 0700 "$APPLIANCE_RUN_DIR"
rm -f "$FATAL_MARKER"
say "starting supervisord (web, monitor, projector; socket in $APPLIANCE_RUN_DIR)"
status=0
step supervisord -c "$CONF" || status=$?
if [ -s "$FATAL_MARKER" ]; then
    say "program '$(head -n 1 "$FATAL_MARKER")' could not be started; exiting 1"
    exit 1
fi
say "supervisord exited with code $status"
exit "$status"
