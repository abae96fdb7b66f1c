"""A statement on a connection of its own, for tests and benchmarks that look into a database."""

from __future__ import annotations

from typing import Callable

import psycopg2
import psycopg2.extras


def query(url: str, sql: str, *params) -> list[tuple]:
    """The rows of one statement (none for a statement without), committed, the connection closed.

    The parameters are always interpolated, so a literal % is written %%.
    """
    return _execute(url, sql, params, lambda cursor: cursor.fetchall())


def records(url: str, sql: str, *params) -> list[dict]:
    """As query(), each row a {column: value} and uuid columns as uuid.UUID (as the tracker's ids are)."""
    def as_dicts(cursor) -> list[dict]:
        columns = [column.name for column in cursor.description]
        return [dict(zip(columns, row)) for row in cursor.fetchall()]
    return _execute(url, sql, params, as_dicts, uuids=True)


def _execute(url: str, sql: str, params: tuple, rows: Callable, *, uuids: bool = False) -> list:
    connection = psycopg2.connect(url)
    if uuids:
        psycopg2.extras.register_uuid(conn_or_curs=connection)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(sql, params)
            return rows(cursor) if cursor.description else []
    finally:
        connection.close()
