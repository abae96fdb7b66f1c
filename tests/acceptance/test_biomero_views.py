"""The real BIOMERO 2.8.3 with its views off, the appliance keeping its four tables (APPLIANCE_BIOMERO_VIEWS).

BIOMERO runs in its own virtualenv, wired by its own SlurmClient code
(tests/support/biomero_driver.py), with `enable_job_accounting`,
`enable_job_progress` and `enable_workflow_analytics` on (as it ships) or off.
"""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg2
import pytest

from appliance import WorkflowTracker
from appliance.biomero_guard import BiomeroViewsWriting
from appliance.config import Settings, parse_database_url
from appliance.migrator import migrate
from appliance.projection import Projector
from appliance.projection.reproject import reproject
from tests.support.biomero_tables import expected_from_biomero, four_tables
from tests.support.biomero_venv import run_driver
from tests.support.projecting import running
from tests.support.sql import query
from tests.support.waiting import wait_for

OURS = ("DATABASE_URL", "SQLALCHEMY_URL", "POSTGRES_", "APPLIANCE_")  # the developer's own settings stay out


def views_on(url: str) -> Settings:
    return Settings(database_url=parse_database_url(url), biomero_views=True)


def appliance_migrate(url: str) -> tuple[int, str]:
    """`appliance migrate` as an operator runs it, with APPLIANCE_BIOMERO_VIEWS=true."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(OURS)}
    completed = subprocess.run([sys.executable, "-m", "appliance.cli", "migrate"], capture_output=True, text=True,
                               env={**env, "DATABASE_URL": url, "APPLIANCE_BIOMERO_VIEWS": "true"}, timeout=120)
    return completed.returncode, completed.stdout + completed.stderr


def copy_log(source: str, target: str) -> None:
    """BIOMERO's events, ids and all, into another database's (empty) BIOMERO log."""
    events = query(source, "SELECT id, originator_id, originator_version, topic, state FROM workflowtracker_events "
                           "ORDER BY id")
    connection = psycopg2.connect(target)
    try:
        with connection, connection.cursor() as cursor:
            cursor.executemany("INSERT INTO workflowtracker_events (id, originator_id, originator_version, topic, "
                               "state) VALUES (%s, %s, %s, %s, %s)", events)
            cursor.execute("SELECT setval(pg_get_serial_sequence('workflowtracker_events', 'id'), max(id)) "
                           "FROM workflowtracker_events")
    finally:
        connection.close()


def test_the_appliance_keeps_biomero_s_tables_as_biomero_s_views_would_but_for_the_documented_differences(
        biomero, empty_database_url, database_url):
    theirs_url, ours_url = empty_database_url, database_url
    # BIOMERO as it ships, its views on: two facility days from one Slurm job id (the cluster recycles ids).
    for _ in range(2):
        run_driver(theirs_url, "facility-day", "4711", "on")
    # The same events where BIOMERO's views are off and the appliance keeps the tables.
    run_driver(ours_url, "init", "off")  # BIOMERO's log and its four tables, made by BIOMERO, empty
    copy_log(theirs_url, ours_url)
    said: list[str] = []
    migrate(views_on(ours_url), announce=said.append)
    assert "adopting biomero_workflow_progress_view as BIOMERO made it, with its 0 row(s): kept, never dropped" in said
    tracker = WorkflowTracker(database_url=ours_url)
    try:
        Projector(tracker, biomero_views=True).catch_up()
        theirs, ours = four_tables(theirs_url), four_tables(ours_url)
        assert len(ours["biomero_workflow_progress_view"]) == 8 and len(ours["biomero_task_execution"]) == 14
        assert ours == expected_from_biomero(theirs, ours_url)
        assert ours != theirs  # the documented differences are there to see

        reproject(tracker, biomero_views=True)
        assert four_tables(ours_url) == ours
        # BIOMERO's own rebuild (SlurmClient(init_slurm=True)) loses its first workflow; the appliance's keeps it.
        first = query(theirs_url, "SELECT originator_id::text FROM workflowtracker_events WHERE id = 1")[0][0]
        run_driver(theirs_url, "rebuild")
        assert first not in four_tables(theirs_url)["biomero_workflow_progress_view"]
        assert first in ours["biomero_workflow_progress_view"]

        # BIOMERO goes on recording with its views off; the appliance follows live.
        with running(Projector(tracker, biomero_views=True, poll_interval=0.2)):
            day = run_driver(ours_url, "facility-day", "9711", "off")
            workflow = day["ids"]["completed"][0]
            wait_for(lambda: query(ours_url, "SELECT status FROM biomero_workflow_progress_view "
                                             "WHERE workflow_id = %s", workflow) == [("DONE",)],
                     timeout=30, message="BIOMERO's new workflow in its table")
            # BIOMERO's own views turned on again: two writers. The projector stops writing and says why.
            run_driver(ours_url, "catch-up")
            wait_for(lambda: query(ours_url, "SELECT last_error FROM projector_progress WHERE last_error LIKE "
                                             "'%%enable_job_accounting%%'"),
                     timeout=30, message="the projector to refuse BIOMERO's views")
        with pytest.raises(BiomeroViewsWriting):
            Projector(tracker, biomero_views=True).catch_up()
    finally:
        tracker.close()


def test_biomero_s_tables_are_refused_while_its_views_write_and_adopted_with_their_rows_once_off(
        biomero, database_url):
    run_driver(database_url, "facility-day", "4711", "on")
    code, output = appliance_migrate(database_url)
    assert code == 1, output
    assert all(switch in output for switch in ("enable_job_accounting", "enable_job_progress",
                                               "enable_workflow_analytics")), output
    before = four_tables(database_url)

    run_driver(database_url, "facility-day", "5711", "off")  # the facility turned BIOMERO's views off
    assert four_tables(database_url) == before
    code, output = appliance_migrate(database_url)
    assert code == 0, output
    assert "adopting biomero_job_view as BIOMERO made it, with its 4 row(s): kept, never dropped" in output
    assert four_tables(database_url) == before

    tracker = WorkflowTracker(database_url=database_url)
    try:
        Projector(tracker, biomero_views=True).catch_up()
    finally:
        tracker.close()
    after = four_tables(database_url)
    assert set(after["biomero_job_view"]) == {-1, 4711, 4712, 4713, 5711, 5712, 5713}
    assert set(after["biomero_workflow_progress_view"]) > set(before["biomero_workflow_progress_view"])


def shape(url: str) -> list[tuple]:
    """BIOMERO's four tables as the catalogue describes them: columns, defaults, constraints."""
    return query(url, "SELECT table_name, ordinal_position, column_name, data_type, is_nullable, column_default "
                      "FROM information_schema.columns WHERE table_name LIKE 'biomero\\_%%' ORDER BY 1, 2") + \
        query(url, "SELECT conrelid::regclass::text, conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
                   "WHERE conrelid::regclass::text LIKE 'biomero\\_%%' ORDER BY 1, 2")


def test_the_tables_the_appliance_makes_are_those_biomero_makes(biomero, database_url, empty_database_url):
    run_driver(empty_database_url, "init", "off")  # BIOMERO's create_all
    migrate(views_on(database_url))  # no BIOMERO here: the appliance makes them
    assert shape(database_url) == shape(empty_database_url)
    assert len(shape(database_url)) == 4 + 3 + 9 + 9 + 4  # every column, a primary key each
