"""APPLIANCE_BIOMERO_VIEWS: the appliance keeps BIOMERO 2.8's four view tables.

The BIOMERO database here is real: recorded by biomero==2.8.3 with its four
views on (tests/fixtures/README.md), so its view tables hold the rows
BIOMERO's own views wrote, and their positions are at its newest event, as a
facility's are before it turns them off. "BIOMERO records with its views off"
is one more BIOMERO event appended to its log, which its views do not
process. tests/acceptance/test_biomero_views.py runs BIOMERO itself.
"""

from __future__ import annotations

import pytest

from appliance import WorkflowTracker
from appliance.biomero_guard import BiomeroViewsWriting
from appliance.biomero_schema import VERSION_TABLE
from appliance.config import Settings, parse_database_url
from appliance.migrator import MigrationError, migrate
from appliance.projection import Projector
from appliance.projection.reproject import reproject
from tests.support import biomero_calls
from tests.support.biomero_tables import expected_from_biomero, four_tables
from tests.support.dumps import restore
from tests.support.projecting import running
from tests.support.schema import prepare_schema
from tests.support.sql import query
from tests.support.waiting import wait_for

SHARED = "biomero-and-appliance-before-appliance-events"
SWITCHES = ("enable_job_accounting", "enable_job_progress", "enable_workflow_analytics")
# A WorkflowInitiated as BIOMERO 2.8.3 stores it, for a run of its own.
LATE_RUN = ("convert_to('{\"name\": \"late\", \"description\": \"\", \"user\": 7, \"group\": 8, "
            "\"timestamp\": {\"_type_\": \"datetime_iso\", \"_data_\": \"2026-12-04T19:00:00+00:00\"}, "
            "\"originator_topic\": \"biomero.eventsourcing:WorkflowRun\"}', 'UTF8')")


def views_on(url: str, off_since: int = 0) -> Settings:
    return Settings(database_url=parse_database_url(url), biomero_views=True, biomero_views_off_since=off_since)


@pytest.fixture
def biomero_db(empty_database_url):
    """BIOMERO's database (its views on until now), with the appliance's schema."""
    restore(empty_database_url, SHARED)
    prepare_schema(empty_database_url)
    return empty_database_url


@pytest.fixture
def tracker(biomero_db):
    tracker = WorkflowTracker(database_url=biomero_db)
    yield tracker
    tracker.close()


def biomero_records_with_its_views_off(url: str) -> str:
    """BIOMERO records one run more, which its views (turned off) do not process; the run's id."""
    return query(url, "INSERT INTO workflowtracker_events (originator_id, originator_version, topic, state) "
                      "VALUES (gen_random_uuid(), 0, 'biomero.eventsourcing:WorkflowRun.WorkflowInitiated', "
                      f"{LATE_RUN}) RETURNING originator_id::text")[0][0]


def newest(url: str) -> dict[str, int]:
    """Each log's newest event."""
    return {"Appliance": query(url, "SELECT coalesce(max(id), 0) FROM appliance_events")[0][0],
            "WorkflowTracker": query(url, "SELECT max(id) FROM workflowtracker_events")[0][0]}


def keep_biomero_views(url: str, off_since: int = 0) -> list[str]:
    """`appliance migrate` with APPLIANCE_BIOMERO_VIEWS=true (and _OFF_SINCE); what it said."""
    said: list[str] = []
    migrate(views_on(url, off_since), announce=said.append)
    return said


def test_biomero_s_own_views_at_its_newest_event_are_refused_naming_their_switches(biomero_db, tracker):
    with pytest.raises(MigrationError) as refused:
        keep_biomero_views(biomero_db)
    message = str(refused.value)
    assert all(name in message for name in (*SWITCHES, "JobAccounting", "WorkflowAnalytics", "notification 56",
                                            "APPLIANCE_BIOMERO_VIEWS_OFF_SINCE=56"))
    assert not query(biomero_db, "SELECT to_regclass(%s)", VERSION_TABLE)[0][0]
    with pytest.raises(BiomeroViewsWriting):
        Projector(tracker, biomero_views=True).catch_up()


def test_views_said_off_at_biomero_s_newest_event_are_believed_until_they_process_one_more(biomero_db, tracker):
    """Turned off after BIOMERO's last event, they look on; APPLIANCE_BIOMERO_VIEWS_OFF_SINCE says
    where they stopped. Views that were on after all move past it with BIOMERO's next event."""
    before = four_tables(biomero_db)
    assert "adopting biomero_job_view as BIOMERO made it, with its 4 row(s): kept, never dropped" in \
        keep_biomero_views(biomero_db, off_since=56)
    Projector(tracker, biomero_views=True, biomero_views_off_since=56).catch_up()
    ours = four_tables(biomero_db)
    expected = expected_from_biomero(before, biomero_db)
    assert all({key: ours[table].get(key) for key in rows} == rows for table, rows in expected.items())

    biomero_records_with_its_views_off(biomero_db)  # BIOMERO's next event, which JobAccounting processes after all:
    query(biomero_db, "UPDATE jobaccounting_tracking SET notification_id = (SELECT max(id) FROM workflowtracker_events)")
    with pytest.raises(BiomeroViewsWriting, match=r"JobAccounting \(enable_job_accounting\) processed BIOMERO's "
                                                  r"newest event"):
        Projector(tracker, biomero_views=True, biomero_views_off_since=56).catch_up()
    with pytest.raises(BiomeroViewsWriting):
        reproject(tracker, biomero_views=True, biomero_views_off_since=56)
    assert four_tables(biomero_db) == ours  # refused before anything was emptied


def test_views_said_off_since_an_event_biomero_never_recorded_are_refused(biomero_db):
    with pytest.raises(MigrationError, match=r"APPLIANCE_BIOMERO_VIEWS_OFF_SINCE=57 is past BIOMERO's newest event "
                                             r"\(notification 56\)"):
        keep_biomero_views(biomero_db, off_since=57)
    assert not query(biomero_db, "SELECT to_regclass(%s)", VERSION_TABLE)[0][0]


def test_biomero_s_tables_are_adopted_with_their_rows_once_its_views_are_off(biomero_db):
    before = four_tables(biomero_db)
    biomero_records_with_its_views_off(biomero_db)
    said = keep_biomero_views(biomero_db)
    assert "adopting biomero_job_view as BIOMERO made it, with its 4 row(s): kept, never dropped" in said
    assert "adopting biomero_task_execution as BIOMERO made it, with its 7 row(s): kept, never dropped" in said
    assert four_tables(biomero_db) == before
    assert query(biomero_db, f"SELECT version_num FROM {VERSION_TABLE}") == [("b001",)]
    assert "BIOMERO's view tables at head b001" in keep_biomero_views(biomero_db)  # nothing more to do


def test_a_table_that_is_not_biomero_2_8_s_is_not_adopted(database_url):
    query(database_url, "CREATE TABLE biomero_job_view (slurm_job_id bigint PRIMARY KEY, \"user\" integer NOT NULL, "
                        "\"group\" integer NOT NULL, task_id uuid, cluster text)")
    with pytest.raises(MigrationError, match=r"biomero_job_view exists but is not BIOMERO 2.8's \(a column cluster "
                                             r"BIOMERO 2.8 has not; slurm_job_id is BIGINT NOT NULL, not INTEGER"):
        keep_biomero_views(database_url)
    assert query(database_url, "SELECT count(*) FROM information_schema.columns "
                               "WHERE table_name = 'biomero_job_view'") == [(5,)]


def test_the_appliance_s_rows_are_biomero_s_but_for_the_documented_differences(biomero_db, tracker):
    theirs = four_tables(biomero_db)
    late = biomero_records_with_its_views_off(biomero_db)
    keep_biomero_views(biomero_db)
    Projector(tracker, biomero_views=True).catch_up()
    ours = four_tables(biomero_db)

    expected = expected_from_biomero(theirs, biomero_db)
    for table, rows in expected.items():
        assert {key: ours[table].get(key) for key in rows} == rows, table
    # The differences are real ones: BIOMERO keeps CREATED for a task that completed without a report.
    convert = next(row for row in theirs["biomero_task_execution"].values()
                   if row["task_name"] == "convert_zarr_to_tiff")
    assert (convert["status"], ours["biomero_task_execution"][convert["task_id"]]["status"]) == \
        ("CREATED", "COMPLETED")
    # And the run recorded with BIOMERO's views off is there too.
    assert ours["biomero_workflow_progress_view"][late] == {
        "workflow_id": late, "status": "INITIALIZING", "progress": "0%", "user": 7, "group": 8, "name": "late",
        "task": None, "main_task_name": None, "start_time": "2026-12-04T19:00:00"}


def test_a_rebuild_gives_the_live_rows_and_keeps_biomero_s_first_workflow(biomero_db, tracker):
    biomero_records_with_its_views_off(biomero_db)
    keep_biomero_views(biomero_db)
    Projector(tracker, biomero_views=True).catch_up()
    live = four_tables(biomero_db)
    first = query(biomero_db, "SELECT originator_id::text FROM workflowtracker_events WHERE id = 1")[0][0]

    assert reproject(tracker, batch_size=7, biomero_views=True).events == 57 + 70

    assert four_tables(biomero_db) == live
    assert first in live["biomero_workflow_progress_view"]  # BIOMERO's own rebuild drops notification 1
    assert dict(query(biomero_db, "SELECT * FROM appliance_biomero_views_position")) == newest(biomero_db)


def test_two_appliances_on_one_database_write_each_row_once(biomero_db, tracker):
    biomero_records_with_its_views_off(biomero_db)
    keep_biomero_views(biomero_db)
    one, another = (Projector(tracker, biomero_views=True, batch_size=3, poll_interval=0.2) for _ in range(2))
    with running(one), running(another):
        for first_job in (8000, 8010):  # BIOMERO's calls on the appliance's tracker: BIOMERO-shaped runs
            biomero_calls.facility_day(tracker, first_job)
        wait_for(lambda: dict(query(biomero_db, "SELECT * FROM projector_tracking")) == newest(biomero_db),
                 timeout=30, message="both logs projected")
    events = query(biomero_db, "SELECT (SELECT count(*) FROM appliance_events) + "
                               "(SELECT count(*) FROM workflowtracker_events)")[0][0]
    assert one.events_applied + another.events_applied == events
    live = four_tables(biomero_db)
    assert {row["slurm_job_id"] for row in live["biomero_job_view"].values()} >= {8000, 8001, 8002, 8010, 8011, 8012}
    reproject(tracker, biomero_views=True)
    assert four_tables(biomero_db) == live


def test_biomero_s_code_on_the_appliance_s_tracker_gets_biomero_s_rows(biomero_db, tracker):
    theirs = four_tables(biomero_db)  # BIOMERO's own views, one facility day from job 4711
    query(biomero_db, "TRUNCATE biomero_job_view, biomero_job_progress_view, biomero_workflow_progress_view, "
                      "biomero_task_execution")
    biomero_records_with_its_views_off(biomero_db)
    keep_biomero_views(biomero_db)
    Projector(tracker, biomero_views=True).catch_up()
    query(biomero_db, "TRUNCATE biomero_job_view, biomero_job_progress_view, biomero_workflow_progress_view, "
                      "biomero_task_execution")
    biomero_calls.facility_day(tracker, 4711)  # the same day, through appliance.WorkflowTracker
    Projector(tracker, biomero_views=True).catch_up()
    ours = four_tables(biomero_db)

    def without_ids(table: str, *columns: str) -> list:
        return sorted(tuple(row[column] for column in columns) for row in table.values())

    workflow = ("status", "progress", "user", "group", "name", "task", "main_task_name")
    assert without_ids(ours["biomero_workflow_progress_view"], *workflow) == \
        without_ids(theirs["biomero_workflow_progress_view"], *workflow)
    assert without_ids(ours["biomero_job_view"], "slurm_job_id", "user", "group") == \
        without_ids(theirs["biomero_job_view"], "slurm_job_id", "user", "group")
    assert ours["biomero_job_progress_view"] == theirs["biomero_job_progress_view"]
    task = ("task_name", "task_version", "user_id", "group_id", "error_type")
    assert without_ids(ours["biomero_task_execution"], *task) == without_ids(theirs["biomero_task_execution"], *task)


def test_turning_the_setting_on_later_rebuilds_every_view_once(biomero_db, tracker, caplog):
    late = biomero_records_with_its_views_off(biomero_db)
    Projector(tracker).catch_up()  # APPLIANCE_BIOMERO_VIEWS off: the other views only
    query(biomero_db, "TRUNCATE biomero_job_view, biomero_job_progress_view, biomero_workflow_progress_view, "
                      "biomero_task_execution")
    keep_biomero_views(biomero_db)
    with caplog.at_level("WARNING", logger="appliance.projection.projector"):
        Projector(tracker, biomero_views=True).catch_up()
    assert "rebuilding every view from the start" in caplog.text
    ours = four_tables(biomero_db)
    assert len(ours["biomero_workflow_progress_view"]) == 5 and late in ours["biomero_workflow_progress_view"]
    assert len(ours["biomero_task_execution"]) == 7
    assert query(biomero_db, "SELECT count(*) FROM workflow_runs") == [(10,)]  # each run once, not twice
