"""`appliance init`: everything the appliance needs in the database, in order, under one lock.

First the event store's tables (the library creates them, taking the schema
lock per transaction), then, holding the schema lock for the session, the
Alembic revisions (appliance.migrator), the move of events an earlier version
left in BIOMERO's table (appliance.eventstore_move), with APPLIANCE_BIOMERO_VIEWS
BIOMERO's four view tables (appliance.biomero_schema), and the init-db triggers
(appliance.triggers). The steps are their modules' own; this one only orders
them, and turns a database error into one line that names no password.
"""

from __future__ import annotations

from appliance import db
from appliance.config import Settings
from appliance.migrator import Announce, MigrationError, schema_lock, upgrade_to_head
from appliance.triggers import TriggerInstallError, install_scripts, load_scripts

SCHEMA_ERRORS = (MigrationError, TriggerInstallError)


def init(settings: Settings, announce: Announce = print) -> None:
    """The event store's tables, then migrate, move old events and install triggers under one lock."""
    from appliance.biomero_schema import upgrade_biomero_views
    from appliance.eventstore_move import move_appliance_events
    from appliance.tracker import WorkflowTracker

    # Read first: an unreadable script must not be found after the migration already ran.
    loaded = load_scripts(settings.init_db_dir) if settings.install_triggers else []
    engine = db.make_engine(settings.database_url, pool_size=2, application_name="appliance-init")
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
            move_appliance_events(engine, announce)  # the event store's, not the schema's: always
            if settings.run_migrations and settings.biomero_views:
                upgrade_biomero_views(engine, settings.migrations_dir, announce,
                                      off_since=settings.biomero_views_off_since)
            if settings.install_triggers:
                install_scripts(engine, loaded, announce)
            else:
                announce("APPLIANCE_INSTALL_TRIGGERS=0: leaving functions and triggers as they are")
    except db.DATABASE_ERRORS as error:
        # The driver's own message (refused, authentication failed) holds no password.
        raise MigrationError(f"database error on {settings.database_url_masked}: {db.first_line(error)}") from None
    finally:
        engine.dispose()
