"""The database seam: its error kinds, what an operator is shown of an error, and the servers a URL
names reaching libpq (no server)."""

import psycopg2
import psycopg2.errors
import psycopg2.extensions
import pytest
from eventsourcing import persistence
from sqlalchemy import exc

from appliance import db
from appliance.config import libpq_params, parse_database_url
from appliance.localpg import free_port


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


def test_first_line_names_every_host_that_was_tried():
    error = psycopg2.OperationalError(
        'connection to server at "10.0.0.1", port 5432 failed: Connection refused\n'
        "\tIs the server running on that host and accepting TCP/IP connections?\n"
        'connection to server at "10.0.0.2", port 5433 failed: session is read-only\n')
    assert db.first_line(error) == ('connection to server at "10.0.0.1", port 5432 failed: Connection refused; '
                                    'connection to server at "10.0.0.2", port 5433 failed: session is read-only')


def test_first_line_names_every_host_of_an_asynchronous_connection_too():
    # libpq leaves the first host's "connection to server" out when connecting asynchronously (the monitor's listener).
    error = psycopg2.OperationalError(
        "Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?\n"
        'connection to server at "10.0.0.2", port 5433 failed: session is read-only\n')
    assert db.first_line(error) == ('Connection refused; '
                                    'connection to server at "10.0.0.2", port 5433 failed: session is read-only')


# A primary and its standby: the same two servers written in each form the appliance takes.
TWO_HOSTS = {
    "SQLAlchemy's host=h:p, repeated": "postgresql://app:pw@/tracking?host=10.0.0.1:5432&host=10.0.0.2:5433"
                                       "&target_session_attrs=read-write",
    "libpq's host=a,b&port=x,y": "postgresql://app:pw@/tracking?host=10.0.0.1,10.0.0.2&port=5432,5433"
                                 "&target_session_attrs=read-write",
    "libpq's URI, hosts before the database": "postgresql://app:pw@10.0.0.1:5432,10.0.0.2:5433/tracking"
                                              "?target_session_attrs=read-write",
}


@pytest.mark.parametrize("text", TWO_HOSTS.values(), ids=TWO_HOSTS)
def test_every_host_of_the_url_reaches_libpq_in_order(text):
    assert libpq_params(parse_database_url(text)) == {
        "host": "10.0.0.1,10.0.0.2", "port": "5432,5433", "dbname": "tracking", "user": "app", "password": "pw",
        "target_session_attrs": "read-write"}


@pytest.mark.parametrize("text", TWO_HOSTS.values(), ids=TWO_HOSTS)
def test_the_pool_and_a_plain_connection_go_to_the_same_servers(text):
    url = parse_database_url(text)
    engine = db.make_engine(url)  # connects to nothing until used
    try:
        assert engine.dialect.create_connect_args(engine.url)[1] == libpq_params(url)
    finally:
        engine.dispose()


def test_hosts_without_ports_keep_libpqs_default_port():
    params = libpq_params(parse_database_url("postgresql://app@/tracking?host=primary,standby"))
    assert (params["host"], params["port"]) == ("primary,standby", ",")
    assert psycopg2.extensions.parse_dsn(psycopg2.extensions.make_dsn(**params))["port"] == ","


def test_one_host_is_read_as_before():
    assert libpq_params(parse_database_url("postgres://app:pw@db.example:5433/tracking")) == {
        "host": "db.example", "port": 5433, "dbname": "tracking", "user": "app", "password": "pw"}


def test_connect_tries_each_host_in_turn():
    # Two ports nothing listens on: libpq reports a refusal from each, so both were tried.
    first, second = free_port(), free_port()
    url = parse_database_url(f"postgresql://app@/tracking?host=127.0.0.1:{first}&host=127.0.0.1:{second}")
    with pytest.raises(psycopg2.OperationalError) as caught:
        db.connect(url, "test", connect_timeout=2)
    assert f"port {first} failed" in db.first_line(caught.value)
    assert f"port {second} failed" in db.first_line(caught.value)
