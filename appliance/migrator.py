"""The startup migrator: the view tables to Alembic's head, under an advisory lock.

The lock is taken on its own autocommit connection, never on the one Alembic
migrates through: under SQLAlchemy 2.0 a query on Alembic's connection before
it configures can make it skip its own commit, and the DDL would be rolled
back silently when the connection closes (see DESIGN.md, known pitfalls).
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

from appliance.config import Settings
from appliance.db import SCHEMA_LOCK_KEY, make_engine
from appliance.views import Base

VERSION_TABLE = "alembic_version_appliance"

Announce = Callable[[str], None]


class MigrationError(RuntimeError):
    """The schema cannot be brought to head safely; the message says why and what to do."""


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """Alembic sees our view tables only: the event store and anything else are not ours."""
    if type_ == "table":
        return name in Base.metadata.tables
    table = getattr(obj, "table", None)
    return table is None or table.name in Base.metadata.tables


def alembic_config(migrations_dir: Path, connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.attributes["connection"] = connection
    return config


def head_revision(migrations_dir: Path) -> str:
    return ScriptDirectory.from_config(alembic_config(migrations_dir)).get_current_head()


def current_revision(connection: Connection) -> str | None:
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


@contextmanager
def schema_lock(engine: Engine, announce: Announce = print) -> Iterator[None]:
    """Hold the schema advisory lock (a session lock on a separate autocommit connection)."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        params = {"key": SCHEMA_LOCK_KEY}
        if not connection.execute(text("SELECT pg_try_advisory_lock(:key)"), params).scalar():
            announce(f"waiting for the schema lock (advisory lock {SCHEMA_LOCK_KEY}): another process holds it")
            connection.execute(text("SELECT pg_advisory_lock(:key)"), params)
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), params)


def upgrade_to_head(
    engine: Engine, migrations_dir: Path, *, allow_auto_stamp: bool = False, announce: Announce = print,
) -> bool:
    """Bring the views to head; True when a revision was applied. Hold `schema_lock` around it."""
    head = head_revision(migrations_dir)
    with engine.connect() as connection:
        current = current_revision(connection)
        if current == head:
            announce(f"schema at head {head}: nothing to migrate")
            return False
        config = alembic_config(migrations_dir, connection)
        if current is None and _view_tables_exist(connection):
            if not allow_auto_stamp:
                raise MigrationError(
                    f"the view tables exist but {VERSION_TABLE} does not: if they were made by this "
                    "version of the appliance, set APPLIANCE_ALLOW_AUTO_STAMP=1 to stamp them at head once"
                )
            announce(f"view tables found without {VERSION_TABLE}: stamping them at head {head}")
            command.stamp(config, "head")
        else:
            announce(f"migrating from {current or 'an empty schema'} to head {head}")
            command.upgrade(config, "head")
        # Alembic joins a transaction that is already open without committing it.
        connection.commit()
    announce(f"schema at head {head}")
    return True


def migrate(settings: Settings, announce: Announce = print) -> bool:
    """`appliance migrate`: take the lock, upgrade to head, release the lock."""
    if not settings.run_migrations:
        announce("APPLIANCE_RUN_MIGRATIONS=0: leaving the schema as it is")
        return False
    engine = make_engine(settings.database_url, pool_size=2, application_name="appliance-migrate")
    try:
        announce(f"migrating {settings.database_url_masked}")
        with schema_lock(engine, announce):
            return upgrade_to_head(
                engine, settings.migrations_dir, allow_auto_stamp=settings.allow_auto_stamp, announce=announce,
            )
    finally:
        engine.dispose()


def _view_tables_exist(connection: Connection) -> bool:
    existing = set(inspect(connection).get_table_names())
    return bool(existing & set(Base.metadata.tables))
