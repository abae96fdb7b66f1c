"""Named SQL queries kept in .sql files, procrastinate-style.

A file holds queries under `-- name: NAME` headers, each followed by a
one-line `-- ` description; `load_queries("file.sql")` returns them by name.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

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
