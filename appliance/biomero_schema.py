"""BIOMERO's four view tables in the schema, when APPLIANCE_BIOMERO_VIEWS is on.

Run by `appliance migrate` and `appliance init` under the schema lock, after
the appliance's own revisions. First it refuses when BIOMERO's own views
still write those tables (appliance.biomero_guard). Then it brings them to
the head of migrations/biomero_views/, whose version table is the
appliance's own (`appliance_biomero_alembic_version`). Tables BIOMERO already
made (its `create_all` does, even with its views off) are adopted with their
rows: checked to be BIOMERO 2.8's, named in the output, never dropped,
recreated or altered. With the setting off none of this runs.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.util import CommandError
from psycopg2 import sql
from sqlalchemy import Connection, Engine, inspect

from appliance import biomero_guard
from appliance.biomero_tables import BIOMERO_TABLES
from appliance.migrator import Announce, MigrationError, alembic_config, current_revision, head_revision

VERSION_TABLE = "appliance_biomero_alembic_version"
DIRECTORY = "biomero_views"  # inside the migrations folder


def context_options() -> dict:
    """What migrations/biomero_views/env.py configures Alembic with."""
    return {"version_table": VERSION_TABLE}


def migrations_dir(migrations: Path) -> Path:
    return migrations / DIRECTORY


def upgrade_biomero_views(engine: Engine, migrations: Path, announce: Announce = print, *,
                          off_since: int = 0) -> bool:
    """Refuse if BIOMERO's views write (past `off_since`: biomero_guard.check); then bring
    the four tables to head. True when it changed something."""
    _refuse_two_writers(engine, off_since)
    directory = migrations_dir(migrations)
    head = head_revision(directory)
    with engine.connect() as connection:
        current = current_revision(connection, VERSION_TABLE)
        if current == head:
            announce(f"BIOMERO's view tables at head {head}")
            return False
        adopted = _adoptable(connection) if current is None else []
        connection.commit()  # End the reads' transaction, so Alembic begins and commits its own.
        for name, rows in adopted:
            announce(f"adopting {name} as BIOMERO made it, with its {rows} row(s): kept, never dropped")
        announce(f"migrating BIOMERO's view tables from {current or 'nothing'} to head {head}")
        try:
            command.upgrade(alembic_config(directory, connection), "head")
        except CommandError as error:
            raise MigrationError(f"alembic: {error}") from None
    with engine.connect() as connection:
        if current_revision(connection, VERSION_TABLE) != head:
            raise MigrationError(f"the migration of BIOMERO's view tables did not persist ({VERSION_TABLE})")
    announce(f"BIOMERO's view tables at head {head}")
    return True


def _refuse_two_writers(engine: Engine, off_since: int) -> None:
    connection = engine.raw_connection()
    try:
        with connection.cursor() as cursor:
            biomero_guard.check(cursor, off_since)
        connection.rollback()
    except biomero_guard.BiomeroViewsWriting as error:
        raise MigrationError(f"APPLIANCE_BIOMERO_VIEWS=true refused: {error}") from None
    finally:
        connection.close()


def _adoptable(connection: Connection) -> list[tuple[str, int]]:
    """BIOMERO's tables found (with their row counts), each checked to be BIOMERO 2.8's."""
    inspector = inspect(connection)
    found = []
    for table in BIOMERO_TABLES:
        if not inspector.has_table(table.name):
            continue
        differences = _differences(table, inspector.get_columns(table.name), connection)
        if differences:
            raise MigrationError(
                f"{table.name} exists but is not BIOMERO 2.8's ({'; '.join(differences)}): the appliance keeps "
                "only BIOMERO 2.8's tables and never alters one it did not make. Set APPLIANCE_BIOMERO_VIEWS=false, "
                "or rename that table so that the appliance makes its own")
        found.append((table.name, _count(connection, table.name)))
    return found


def _differences(table, columns: list[dict], connection: Connection) -> list[str]:
    """What differs between BIOMERO 2.8's columns (name, type, nullable) and the table's."""
    dialect = connection.dialect
    theirs = {column["name"]: (column["type"].compile(dialect=dialect), column["nullable"]) for column in columns}
    ours = {column.name: (column.type.compile(dialect=dialect), column.nullable) for column in table.columns}
    differences = [f"no column {name}" for name in ours.keys() - theirs.keys()]
    differences += [f"a column {name} BIOMERO 2.8 has not" for name in theirs.keys() - ours.keys()]
    differences += [f"{name} is {theirs[name][0]}{'' if theirs[name][1] else ' NOT NULL'}, not "
                    f"{ours[name][0]}{'' if ours[name][1] else ' NOT NULL'}"
                    for name in sorted(ours.keys() & theirs.keys()) if theirs[name] != ours[name]]
    return differences


def _count(connection: Connection, table: str) -> int:
    raw = connection.connection.dbapi_connection
    with raw.cursor() as cursor:
        cursor.execute(sql.SQL(biomero_guard.QUERIES["count_rows"]).format(table=sql.Identifier(table)))
        return cursor.fetchone()[0]

