"""Named SQL queries kept in .sql files, procrastinate-style.

A file holds queries under `-- name: NAME` headers, each followed by a
one-line `-- ` description; `load_queries("file.sql")` returns them by name.
A clause that several queries share is a query of its own, a part, named in
theirs as `{part}`: `compose(queries, name)` fills it in, the way the
other `{...}` of these files (table names) are filled in, with psycopg2.sql.
"""

from __future__ import annotations

import re
import string
from functools import cache
from importlib import resources
from typing import Mapping

from psycopg2 import sql

_HEADER = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


@cache
def load_queries(filename: str) -> dict[str, str]:
    text = resources.files(__package__).joinpath(filename).read_text()
    parts = _HEADER.split(text)[1:]
    queries = {}
    for name, body in zip(parts[::2], parts[1::2]):
        lines = [line for line in body.strip().splitlines() if not line.startswith("-- ")]
        queries[name] = "\n".join(lines).strip()
    return queries


def compose(queries: Mapping[str, str], name: str) -> sql.Composed:
    """The query `name` with each `{part}` in it replaced by the query of that name
    (SQL written once, never a value: values stay %(name)s parameters)."""
    text = queries[name]
    parts = {field for _, field, _, _ in string.Formatter().parse(text) if field}
    return sql.SQL(text).format(**{part: sql.SQL(queries[part]) for part in parts})
