"""The trigger installer: runs init-db/NN-*.sql in file-name order, after the migration.

All scripts run in one transaction under the schema advisory lock: two
processes running CREATE OR REPLACE FUNCTION at once fail with "tuple
concurrently updated", and a failing script must leave the database as it
was. Every script is idempotent, so installing twice changes nothing.
"""

from __future__ import annotations

from pathlib import Path

import psycopg2
from eventsourcing.persistence import PersistenceError
from sqlalchemy.exc import DBAPIError
from sqlalchemy import Engine

from appliance.config import Settings
from appliance.db import make_engine
from appliance.migrator import Announce, MigrationError, schema_lock, upgrade_to_head


class TriggerInstallError(RuntimeError):
    """A script failed; nothing of any script was kept."""

    def __init__(self, script: Path, message: str):
        self.script = script
        super().__init__(f"{script.name} failed, nothing was installed: {message.strip()}")


def scripts(init_db_dir: Path) -> list[Path]:
    return sorted(init_db_dir.glob("*.sql"))


def install_scripts(engine: Engine, init_db_dir: Path, announce: Announce = print) -> int:
    """Run every script in one transaction; hold `schema_lock` around it. Returns how many ran."""
    paths = scripts(init_db_dir)
    connection = engine.raw_connection()
    try:
        with connection.cursor() as cursor:
            for path in paths:
                try:
                    cursor.execute(path.read_text())
                except psycopg2.Error as error:
                    connection.rollback()
                    raise TriggerInstallError(path, str(error)) from None
        connection.commit()
    finally:
        connection.close()
    announce(f"installed {len(paths)} script(s) from {init_db_dir}: {', '.join(p.name for p in paths)}")
    return len(paths)


def install_triggers(settings: Settings, announce: Announce = print) -> None:
    """`appliance install-triggers`."""
    if not settings.install_triggers:
        announce("APPLIANCE_INSTALL_TRIGGERS=0: leaving functions and triggers as they are")
        return
    engine = make_engine(settings.database_url, pool_size=2, application_name="appliance-install-triggers")
    try:
        with schema_lock(engine, announce):
            install_scripts(engine, settings.init_db_dir, announce)
    finally:
        engine.dispose()


def init(settings: Settings, announce: Announce = print) -> None:
    """`appliance init`: the event store's tables, then migrate and install triggers under one lock."""
    from appliance.tracker import WorkflowTracker

    engine = make_engine(settings.database_url, pool_size=2, application_name="appliance-init")
    try:
        # Before the session lock: the event store takes the same key per transaction.
        WorkflowTracker(settings, engine=engine).close()
        announce("event store ready")
        with schema_lock(engine, announce):
            if settings.run_migrations:
                upgrade_to_head(engine, settings.migrations_dir,
                                allow_auto_stamp=settings.allow_auto_stamp, announce=announce)
            else:
                announce("APPLIANCE_RUN_MIGRATIONS=0: leaving the schema as it is")
            if settings.install_triggers:
                install_scripts(engine, settings.init_db_dir, announce)
            else:
                announce("APPLIANCE_INSTALL_TRIGGERS=0: leaving functions and triggers as they are")
    except (DBAPIError, PersistenceError, psycopg2.Error) as error:
        # The driver's own message (refused, authentication failed) holds no password.
        cause = getattr(error, "orig", None) or error.__cause__ or error
        raise MigrationError(f"database error on {settings.database_url_masked}: {cause}".strip()) from None
    finally:
        engine.dispose()


SCHEMA_ERRORS = (MigrationError, TriggerInstallError)
