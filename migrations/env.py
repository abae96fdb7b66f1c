"""Alembic environment: the view tables of appliance.views, nothing else.

The event store's tables (and any other table in the database) are not ours:
`include_object` hides them from autogenerate and `alembic check`.
"""

from alembic import context

from appliance.migrator import context_options
from appliance.views import Base


def run_migrations(connection) -> None:
    # Each revision commits with its version row: a failing revision leaves the
    # database at the last good one, and the next start resumes from there.
    context.configure(
        connection=connection, target_metadata=Base.metadata, transaction_per_migration=True, **context_options(),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:  # The appliance's migrator (or a test) hands one over.
        run_migrations(connection)
        return
    # The `alembic` command line: the database from the environment, via Settings,
    # and the same advisory lock as the migrator, so it never races a starting appliance.
    from appliance.config import Settings
    from appliance.db import make_engine
    from appliance.migrator import schema_lock

    engine = make_engine(Settings.from_env().database_url, pool_size=2, application_name="appliance-alembic")
    try:
        with schema_lock(engine), engine.connect() as connection:
            run_migrations(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run_online()
