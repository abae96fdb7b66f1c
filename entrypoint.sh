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
# text or json (checked by `appliance config`); supervisord's and the listener's lines follow it too.
export LOG_FORMAT="${LOG_FORMAT:-text}"
CONF="$APP_DIR/conf/supervisord.conf"
FATAL_MARKER="$APPLIANCE_RUN_DIR/fatal"

case "${1:-start}" in
    start) ;;
    supervisorctl) shift; exec supervisorctl -c "$CONF" "$@" ;;
    shell) shift; exec bash "$@" ;;
    appliance) shift; exec appliance "$@" ;;
    *) exec appliance "$@" ;;
esac

# One line in the appliance's format (appliance/logs.py): `<time> entrypoint INFO ...`, or JSON.
say() {
    local now message="$*"
    now="$(date '+%Y-%m-%d %H:%M:%S,%3N')"
    if [ "$LOG_FORMAT" = json ]; then
        message="${message//\\/\\\\}"
        message="${message//\"/\\\"}"
        printf '{"time": "%s", "program": "entrypoint", "level": "INFO", "message": "%s"}\n' \
            "$(date '+%Y-%m-%dT%H:%M:%S.%3N%:z')" "$message" >&2
    else
        printf '%s entrypoint INFO %s\n' "$now" "$message" >&2
    fi
}

# `supervisorctl -c conf/supervisord.conf` finds the socket through ./run, a
# link to APPLIANCE_RUN_DIR (the image has it already; a checkout gets it here).
link_run_dir() {
    local link="$APP_DIR/run"
    if [ "$(readlink "$link" 2>/dev/null)" = "$APPLIANCE_RUN_DIR" ]; then return 0; fi
    if { [ -L "$link" ] || [ ! -e "$link" ]; } && ln -sfn "$APPLIANCE_RUN_DIR" "$link" 2>/dev/null; then return 0; fi
    say "note: $link cannot point to $APPLIANCE_RUN_DIR; use supervisorctl -s unix://$APPLIANCE_RUN_DIR/supervisor.sock"
}

# Each step runs in the background so that a SIGTERM (docker stop) reaches it at
# once; bash would otherwise wait for a foreground step to end before its trap.
child=""
stopping=""
trap 'stopping=1; if [ -n "$child" ]; then kill -TERM "$child" 2>/dev/null || true; fi' TERM INT
step() {
    local status=0
    stop_if_asked
    "$@" &
    child=$!
    wait "$child" || status=$?
    while kill -0 "$child" 2>/dev/null; do  # a trapped signal interrupted the wait
        status=0
        wait "$child" || status=$?
    done
    child=""
    stop_if_asked
    return "$status"
}
# A SIGTERM (docker stop) during start-up ends it there, with exit 0.
stop_if_asked() {
    if [ -n "$stopping" ]; then say "stopped during start-up"; exit 0; fi
}

say "checking the environment"
# config, the run folder, wait-for-db, then "migrating ..." and init: one Python process
# (three cost a second more), each step's lines and exit code its own (appliance/cli.py).
step appliance prepare
link_run_dir
say "starting supervisord (web, monitor, projector; socket in $APPLIANCE_RUN_DIR)"
stop_if_asked
# supervisord runs in this process from here on (signals reach it directly);
# the wrapper exits 1 if a program could not be started (see appliance/supervise.py).
exec python -m appliance.supervise "$FATAL_MARKER" "$LOG_FORMAT" -c "$CONF"
