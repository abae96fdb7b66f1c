"""The errors the write side (the tracker, and ingest through it) raises on purpose.

Each says what is wrong in its message; when one is raised, nothing was recorded.
"""

from __future__ import annotations

import psycopg2
from eventsourcing import persistence


class TrackerError(Exception):
    """Base class of the errors the tracker raises on purpose."""


class UnknownIdError(TrackerError, LookupError):
    """No workflow run (or task) has the given id."""


class InvalidArgumentError(TrackerError, ValueError):
    """An argument has the wrong type or value; the message starts with its name."""


class DuplicateIdError(TrackerError):
    """A new run, task or log line was given an id that is already taken."""


class DatabaseUnavailableError(TrackerError, persistence.OperationalError, psycopg2.OperationalError):
    """The database could not be reached (or refused the login); the message holds no password.

    Also one of the library's and psycopg2's OperationalErrors, so code that
    waits and retries on those (the projector, the web's 503) treats it so.
    """


class ConcurrencyError(TrackerError):
    """Concurrent writers kept changing the same aggregates; nothing was recorded."""
