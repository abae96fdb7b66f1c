"""The trigger installer: runs init-db/NN-*.sql in the order of their numbers, after the migration.

All scripts run in one transaction under the schema advisory lock: two
processes running CREATE OR REPLACE FUNCTION at once fail with "tuple
concurrently updated", and a failing script must leave the database as it
was. Every script is idempotent, so installing twice changes nothing.
"""

from __future__ import annotations

import re
from pathlib import Path

import psycopg2
from sqlalchemy import Engine

from appliance import db
from appliance.config import Settings
from appliance.migrator import Announce, schema_lock


SCRIPT_NAME = re.compile(r"([0-9]+)-[^/]*\.sql")
# CREATE OR REPLACE TRIGGER (init-db/10-change-notifications.sql) came with PostgreSQL 14.
MIN_SERVER_VERSION = 140000


class TriggerInstallError(RuntimeError):
    """A script failed; nothing of any script was kept."""

    def __init__(self, script: Path, message: str):
        self.script = script
        super().__init__(f"{script.name} failed, nothing was installed: {message.strip()}")


class ScriptsRefused(TriggerInstallError):
    """The scripts cannot be read, or the server cannot run them: nothing was run."""

    def __init__(self, message: str):
        RuntimeError.__init__(self, f"{message}; nothing was installed")


def load_scripts(init_db_dir: Path) -> list[tuple[Path, str]]:
    """Every NN-*.sql script with its text, in the order of the numbers, before any is run.

    Plain name order would run 100-x.sql before 20-y.sql, so the number
    decides; a .sql file named otherwise is refused rather than guessed at.
    """
    paths = sorted(init_db_dir.glob("*.sql"))
    misnamed = [path.name for path in paths if not SCRIPT_NAME.fullmatch(path.name)]
    if misnamed:
        raise ScriptsRefused(f"{init_db_dir}: {', '.join(misnamed)}: not named NN-name.sql "
                             "(a number, a dash, a name), so its place in the order is unknown")
    paths.sort(key=lambda path: (int(SCRIPT_NAME.fullmatch(path.name).group(1)), path.name))
    return [(path, _read(path)) for path in paths]


def _read(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise ScriptsRefused(f"{path}: not UTF-8 text (byte 0x{error.object[error.start]:02x} "
                             f"at offset {error.start})") from None
    except OSError as error:
        raise ScriptsRefused(f"{path}: cannot read it: {error.strerror or type(error).__name__}") from None


def check_server_version(version_num: int) -> None:
    """server_version_num must be at least MIN_SERVER_VERSION."""
    if version_num < MIN_SERVER_VERSION:
        # From 10 on the number is major * 10000 + minor; before, 9.6.24 was 90624.
        major = str(version_num // 10000) if version_num >= 100000 else f"{version_num // 10000}.{version_num // 100 % 100}"
        raise ScriptsRefused(f"PostgreSQL 14 or newer is needed (the scripts use CREATE OR REPLACE TRIGGER); "
                             f"this server is PostgreSQL {major} (server_version_num {version_num})")


def install_scripts(engine: Engine, scripts: list[tuple[Path, str]], announce: Announce = print) -> int:
    """Run the loaded scripts in one transaction; hold `schema_lock` around it. Returns how many ran."""
    connection = engine.raw_connection()
    try:
        with connection.cursor() as cursor:
            cursor.execute(db.QUERIES["server_version_num"])
            check_server_version(int(cursor.fetchone()[0]))
            for path, text in scripts:
                try:
                    cursor.execute(text)
                except psycopg2.Error as error:
                    connection.rollback()
                    raise TriggerInstallError(path, str(error)) from None
        connection.commit()
    finally:
        connection.close()
    folder = scripts[0][0].parent if scripts else "init-db"
    announce(f"installed {len(scripts)} script(s) from {folder}: {', '.join(p.name for p, _ in scripts)}")
    return len(scripts)


def install_triggers(settings: Settings, announce: Announce = print) -> None:
    """`appliance install-triggers`."""
    if not settings.install_triggers:
        announce("APPLIANCE_INSTALL_TRIGGERS=0: leaving functions and triggers as they are")
        return
    loaded = load_scripts(settings.init_db_dir)  # an unreadable script stops everything before it starts
    engine = db.make_engine(settings.database_url, pool_size=2, application_name="appliance-install-triggers")
    try:
        with schema_lock(engine, announce):
            install_scripts(engine, loaded, announce)
    finally:
        engine.dispose()
