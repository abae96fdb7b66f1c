# shellcheck shell=bash
# Sourced by scripts/run and scripts/demo (with APP_DIR set, the virtualenv active): the
# settings of a run from a checkout that the environment does not give. entrypoint.sh
# itself reads the environment only, as in the image.
#   $APP_DIR/.env              NAME=value lines, read as `docker run --env-file` reads
#                              them (no quotes, no expansion); the environment wins
#   $APP_DIR/.appliance-data   scripts/run's private PostgreSQL (used when no database
#                              is configured) and its ingest token

read_env_file() {
    local line name
    [ -f "$1" ] || return 0
    while IFS= read -r line || [ -n "$line" ]; do
        line="${line%$'\r'}"
        line="${line#"${line%%[![:space:]]*}"}"
        case "$line" in '' | '#'*) continue ;; esac
        name="${line%%=*}"
        [[ $line == *=* && $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
        [ -n "${!name+set}" ] || export "$name=${line#*=}"
    done <"$1"
}

database_configured() {
    [ -n "${DATABASE_URL:-}${SQLALCHEMY_URL:-}${POSTGRES_HOST:-}" ]
}

native_env() {
    local data="$APP_DIR/.appliance-data" url
    read_env_file "$APP_DIR/.env"
    if ! database_configured && [ -f "$data/port" ] && url="$(python -m appliance.localpg url "$data")"; then
        export DATABASE_URL="$url"
    fi
    if [ -z "${APPLIANCE_INGEST_TOKEN:-}" ] && [ -r "$data/ingest-token" ]; then
        APPLIANCE_INGEST_TOKEN="$(cat "$data/ingest-token")"
        export APPLIANCE_INGEST_TOKEN
    fi
}
