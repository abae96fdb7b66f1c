"""A statement on a connection of its own, for tests and benchmarks that look into a database."""

from __future__ import annotations

import psycopg2


def query(url: str, sql: str, *params) -> list[tuple]:
    """The rows of one statement (none for a statement without), committed, the connection closed.

    The parameters are always interpolated, so a literal % is written %%.
    """
    connection = psycopg2.connect(url)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall() if cursor.description else []
    finally:
        connection.close()
