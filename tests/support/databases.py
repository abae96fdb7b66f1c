"""Databases of the test server: made and dropped on a maintenance connection."""

from __future__ import annotations

import itertools
import os
from typing import Iterator

import psycopg2
from sqlalchemy.engine import make_url

_database_numbers = itertools.count()


def administer(admin_url: str, *statements: str) -> None:
    """Statements outside a transaction (CREATE/DROP DATABASE), on a connection of their own."""
    connection = psycopg2.connect(admin_url)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
    finally:
        connection.close()


def url_for(admin_url: str, database: str) -> str:
    """The URL of another database on the same server, as the same user."""
    return make_url(admin_url).set(database=database).render_as_string(hide_password=False)


def fresh_database(admin_url: str, prefix: str, template: str | None = None) -> Iterator[str]:
    """Yields the URL of a new database (a copy of `template`, if given), dropped when resumed."""
    name = f"{prefix}_{os.getpid()}_{next(_database_numbers)}"
    administer(admin_url, f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
    yield url_for(admin_url, name)
    administer(admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
