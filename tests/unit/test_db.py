"""The database seam's error kinds and what an operator is shown of an error (no server)."""

import psycopg2
import psycopg2.errors
import pytest
from eventsourcing import persistence
from sqlalchemy import exc

from appliance import db


def _wrapped(orig, cls=exc.DBAPIError, **kwargs):
    return cls("SELECT 1", {}, orig, **kwargs)


def _caused_by(error, cause):
    error.__cause__ = cause
    return error


@pytest.mark.parametrize("error, unavailable", [
    (psycopg2.OperationalError("server closed the connection"), True),
    (psycopg2.InterfaceError("connection already closed"), True),
    (psycopg2.errors.ReadOnlySqlTransaction("read-only transaction"), True),
    (exc.TimeoutError("QueuePool limit reached"), True),
    (_wrapped(psycopg2.InterfaceError("connection already closed"), exc.InterfaceError), True),
    (_wrapped(psycopg2.errors.ReadOnlySqlTransaction("read-only"), exc.InternalError), True),
    (_wrapped(psycopg2.DatabaseError("SSL SYSCALL error"), connection_invalidated=True), True),
    (persistence.OperationalError("gone"), True),
    (persistence.InterfaceError("closed"), True),
    (_caused_by(persistence.PersistenceError("write failed"), psycopg2.OperationalError("gone")), True),
    (psycopg2.ProgrammingError("syntax error"), False),
    (psycopg2.errors.UndefinedColumn("no such column"), False),
    (_wrapped(psycopg2.ProgrammingError("syntax error")), False),
    (_wrapped(psycopg2.DatabaseError("something else")), False),
    (persistence.ProgrammingError("bad"), False),
    (_caused_by(RuntimeError("a bug"), None), False),
])
def test_which_errors_mean_the_database_is_unavailable(error, unavailable):
    assert db.unavailable(error) is unavailable


def test_a_missing_table_or_column_means_the_schema_is_missing():
    assert db.schema_missing(_wrapped(psycopg2.errors.UndefinedTable("no such table"), exc.ProgrammingError))
    assert db.schema_missing(psycopg2.errors.UndefinedColumn("no such column"))
    assert not db.schema_missing(psycopg2.OperationalError("gone"))


def test_first_line_is_the_drivers_first_line_without_sqlalchemys_wrapping():
    error = _wrapped(psycopg2.OperationalError("could not connect to server\n\tIs the server running?"),
                     exc.OperationalError)
    assert db.first_line(error) == "could not connect to server"


def test_first_line_of_an_error_that_says_nothing_is_its_kind():
    assert db.first_line(psycopg2.InterfaceError()) == "InterfaceError"


def test_first_line_shows_the_lost_connection_behind_a_later_error():
    try:
        try:
            raise psycopg2.OperationalError("server closed the connection unexpectedly")
        except psycopg2.OperationalError:
            raise psycopg2.InterfaceError("connection already closed")
    except psycopg2.InterfaceError as error:
        assert db.first_line(error) == "server closed the connection unexpectedly"
