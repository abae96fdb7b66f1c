"""The startup migrator: the view tables to Alembic's head, under an advisory lock.

The lock is taken on its own autocommit connection, never on the one Alembic
migrates through: under SQLAlchemy 2.0 a query on Alembic's connection before
it configures leaves a transaction open, Alembic then neither begins nor
commits its own, and the DDL is rolled back silently when the connection
closes (see DESIGN.md, known pitfalls). For the same reason the migrator ends
its own read transaction before it hands the connection to Alembic, and reads
the version back on a fresh connection afterwards.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, inspect

from appliance import db
from appliance.config import Settings
from appliance.db import SCHEMA_LOCK_KEY
from appliance.views import ADOPTED_TABLES, Base

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


def context_options() -> dict[str, Any]:
    """What env.py and the drift check both configure Alembic with."""
    return {"version_table": VERSION_TABLE, "include_object": include_object, "compare_server_default": True}


def alembic_config(migrations_dir: Path, connection: Connection | None = None) -> Config:
    """A Config for alembic.command; env.py migrates through `connection` when one is given."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.attributes["connection"] = connection
    return config


def script_directory(migrations_dir: Path) -> ScriptDirectory:
    try:
        return ScriptDirectory.from_config(alembic_config(migrations_dir))
    except CommandError as error:
        raise MigrationError(f"cannot read the revisions in {migrations_dir}: {error}") from None


def head_revision(migrations_dir: Path) -> str:
    head = script_directory(migrations_dir).get_current_head()
    if head is None:
        raise MigrationError(f"{migrations_dir} holds no Alembic revision: check APPLIANCE_MIGRATIONS_DIR")
    return head


def current_revision(connection: Connection, version_table: str = VERSION_TABLE) -> str | None:
    context = MigrationContext.configure(connection, opts={"version_table": version_table})
    return context.get_current_revision()


def schema_drift(connection: Connection) -> list:
    """Alembic's differences between the view models and the database; [] when they match."""
    context = MigrationContext.configure(connection, opts=context_options())
    return compare_metadata(context, Base.metadata)


@contextmanager
def schema_lock(engine: Engine, announce: Announce = print) -> Iterator[None]:
    """Hold the schema advisory lock (a session lock on a separate autocommit connection)."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        params = {"key": SCHEMA_LOCK_KEY}
        if not connection.exec_driver_sql(db.QUERIES["try_schema_lock"], params).scalar():
            announce(f"waiting for the schema lock (advisory lock {SCHEMA_LOCK_KEY}): another process holds it")
            connection.exec_driver_sql(db.QUERIES["schema_lock"], params)
        try:
            yield
        finally:
            connection.exec_driver_sql(db.QUERIES["schema_unlock"], params)


def upgrade_to_head(
    engine: Engine, migrations_dir: Path, *, allow_auto_stamp: bool = False, announce: Announce = print,
) -> bool:
    """Bring the views to head; True when a revision was applied or stamped. Hold `schema_lock` around it."""
    head = head_revision(migrations_dir)
    with engine.connect() as connection:
        current = current_revision(connection)
        if current == head:
            announce(f"schema at head {head}: nothing to migrate")
            return False
        _check_known(current, migrations_dir, head)
        unversioned_views = current is None and _view_tables_exist(connection)
        if unversioned_views:
            _check_stampable(connection, head, allow_auto_stamp)
        connection.commit()  # End the reads' transaction, so Alembic begins and commits its own.
        config = alembic_config(migrations_dir, connection)
        try:
            if unversioned_views:
                announce(f"view tables found without {VERSION_TABLE}: stamping them at head {head}")
                command.stamp(config, "head")
            else:
                announce(f"migrating from {current or 'an empty schema'} to head {head}")
                command.upgrade(config, "head")
        except CommandError as error:
            raise MigrationError(f"alembic: {error}") from None
    _check_committed(engine, head)
    announce(f"schema at head {head}")
    return True


def migrate(settings: Settings, announce: Announce = print) -> bool:
    """`appliance migrate`: take the lock, upgrade to head, move the appliance's events out of
    BIOMERO's table if any are left there (appliance.eventstore_move), with APPLIANCE_BIOMERO_VIEWS
    BIOMERO's four view tables (appliance.biomero_schema), release the lock.
    True when it changed something."""
    from appliance.biomero_schema import upgrade_biomero_views
    from appliance.eventstore_move import move_appliance_events

    if not settings.run_migrations:
        announce("APPLIANCE_RUN_MIGRATIONS=0: leaving the schema as it is")
        return False
    engine = db.make_engine(settings.database_url, pool_size=2, application_name="appliance-migrate")
    try:
        announce(f"migrating {settings.database_url_masked}")
        with schema_lock(engine, announce):
            changed = upgrade_to_head(
                engine, settings.migrations_dir, allow_auto_stamp=settings.allow_auto_stamp, announce=announce,
            )
            changed = bool(move_appliance_events(engine, announce)) or changed
            if settings.biomero_views:
                changed = upgrade_biomero_views(engine, settings.migrations_dir, announce,
                                                off_since=settings.biomero_views_off_since) or changed
            return changed
    except db.DATABASE_ERRORS as error:
        # The driver's own message (refused, authentication failed, permission denied) holds no password.
        raise MigrationError(f"database error on {settings.database_url_masked}: {db.first_line(error)}") from None
    finally:
        engine.dispose()


def _view_tables_exist(connection: Connection) -> bool:
    existing = set(inspect(connection).get_table_names())
    return bool(existing & (set(Base.metadata.tables) - set(ADOPTED_TABLES)))


def _check_known(current: str | None, migrations_dir: Path, head: str) -> None:
    script = script_directory(migrations_dir)
    if current is not None and current not in {revision.revision for revision in script.walk_revisions()}:
        raise MigrationError(
            f"the database is at revision {current}, which this version of the appliance does not know "
            f"(its head is {head}): a newer version migrated it; run that version instead"
        )


def _check_stampable(connection: Connection, head: str, allow_auto_stamp: bool) -> None:
    """Stamping claims the tables are exactly head's: allowed on request, and only when true."""
    if not allow_auto_stamp:
        raise MigrationError(
            f"the view tables exist but {VERSION_TABLE} does not: if they were made by this "
            "version of the appliance, set APPLIANCE_ALLOW_AUTO_STAMP=1 to stamp them at head once"
        )
    drift = [_describe(diff) for diff in schema_drift(connection)]
    if drift:
        raise MigrationError(
            f"the view tables exist without {VERSION_TABLE} but differ from head {head} ({len(drift)} "
            f"difference(s): {'; '.join(drift[:3])}), so they cannot be stamped: align them by hand, or drop "
            "them and migrate again (`appliance reproject` refills them from the event store)"
        )


def _describe(diff) -> str:
    """('remove_column', None, 'workflow_runs', Column('extra')) -> 'remove_column workflow_runs extra'."""
    step = diff[0] if isinstance(diff, list) else diff  # Alembic groups a column's modify_* steps in a list.
    names = [getattr(part, "name", part) for part in step[:4]]
    return " ".join(name for name in names if isinstance(name, str))


def _check_committed(engine: Engine, head: str) -> None:
    """Read the version back on another connection: a silent rollback fails here, not later."""
    with engine.connect() as connection:
        found = current_revision(connection)
    if found != head:
        raise MigrationError(f"the migration did not persist: {VERSION_TABLE} holds {found}, not {head}")
