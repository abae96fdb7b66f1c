"""Alembic environment: the view tables of appliance.views, nothing else.

The event store's tables (and any other table in the database) are not ours:
`include_object` hides them from autogenerate and `alembic check`.
"""

from alembic import context

from appliance.migrator import VERSION_TABLE, include_object
from appliance.views import Base


def run_migrations(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        include_object=include_object,
        compare_server_default=True,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run_migrations(connection)
        return
    # The `alembic` command line: the database from the environment, via Settings.
    from appliance.config import Settings
    from appliance.db import make_engine

    engine = make_engine(Settings.from_env().database_url, application_name="appliance-alembic")
    try:
        with engine.connect() as connection:
            run_migrations(connection)
            connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run_online()
