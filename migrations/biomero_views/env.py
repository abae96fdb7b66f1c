"""Alembic environment of BIOMERO's four view tables (APPLIANCE_BIOMERO_VIEWS).

Its own version table (appliance_biomero_alembic_version) keeps this history
apart from the appliance's views (alembic_version_appliance) and from
BIOMERO's own Alembic (alembic_version_biomero). Only the appliance's
migrator runs it (appliance.biomero_schema), under the schema lock.
"""

from alembic import context

from appliance.biomero_schema import context_options


def run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise SystemExit("BIOMERO's view tables are migrated by `appliance migrate` with APPLIANCE_BIOMERO_VIEWS=true")
    context.configure(connection=connection, transaction_per_migration=True, **context_options())
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run_online()
