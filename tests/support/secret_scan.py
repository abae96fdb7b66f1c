"""The test database's password never appears in anything a test run shows.

conftest.py watches the password of the test server (`watch`); its hooks look
for it in each test's captured output and failure text, and
`Appliance.stop()` looks for it in the appliance's log. Messages about a find
never repeat the password.
"""

from __future__ import annotations

import os

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

# Where a test report keeps what a reader of the run sees: {name: attribute}.
REPORT_PARTS = {"stdout": "capstdout", "stderr": "capstderr", "log": "caplog", "failure text": "longreprtext"}

# A given password shorter than this could turn up in a log by chance.
MIN_LENGTH = 8

_watched: set[str] = set()


def watch(password: str | None) -> None:
    if password:
        _watched.add(password)


def watched() -> frozenset[str]:
    return frozenset(_watched)


def password_of(url: str | None) -> str | None:
    """The password in a database URL; None when it has none or is no URL."""
    try:
        return make_url(url).password if url else None
    except (ArgumentError, ValueError):  # ValueError: SQLAlchemy's int() of a malformed port
        return None


def with_password(database_url, dummy: str = "not-to-be-printed") -> tuple[str, str]:
    """The URL with a password to look for in output (`dummy` when it has none: the server trusts it)."""
    url = make_url(database_url)
    if not url.password:
        url = url.set(password=dummy)
    return url.render_as_string(hide_password=False), url.password


def given_passwords(env: dict[str, str]) -> set[str]:
    """The watched passwords and any long enough one that `env` gives the database."""
    given = {password_of(env.get("DATABASE_URL")), password_of(env.get("SQLALCHEMY_URL")), env.get("POSTGRES_PASSWORD")}
    return set(_watched) | {password for password in given if password and len(password) >= MIN_LENGTH}


def parts_mentioning(report, password: str) -> list[str]:
    """The parts of a test report (captured stdout, stderr, log, failure text) that hold `password`."""
    texts = {name: getattr(report, attribute, "") or "" for name, attribute in REPORT_PARTS.items()}
    texts["failure text"] = _without_test_arguments(report, texts["failure text"])
    return [name for name, text in texts.items() if password in text]


def _without_test_arguments(report, text: str) -> str:
    """The failure text less the lines where pytest shows the test's own arguments (`database_url = '...'`):
    the test's fixture values, not output of the appliance."""
    entries = getattr(getattr(report.longrepr, "reprtraceback", None), "reprentries", ())
    for entry in entries:
        for name, value in getattr(getattr(entry, "reprfuncargs", None), "args", ()):
            text = text.replace(f"{name} = {value}", "")
    return text


def check_file(path: os.PathLike, passwords) -> None:
    """AssertionError (naming the file, not the password) if the file holds any of `passwords`."""
    try:
        with open(path, errors="replace") as file:
            text = file.read()
    except FileNotFoundError:
        return
    if any(password in text for password in passwords):
        raise AssertionError(f"the database password appears in {path}")
