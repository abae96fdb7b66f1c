"""The Alembic environment and the startup migrator, as `appliance migrate` runs them."""

import os
import subprocess
import sys

import psycopg2
import pytest
from alembic import command
from sqlalchemy import create_engine

from appliance import WorkflowTracker
from appliance.config import DEFAULT_MIGRATIONS_DIR
from appliance.migrator import VERSION_TABLE, alembic_config, head_revision
from appliance.views import Base

HEAD = head_revision(DEFAULT_MIGRATIONS_DIR)


def run_migrate(database_url, **env):
    environment = {**os.environ, "DATABASE_URL": database_url, **env}
    return subprocess.Popen(
        [sys.executable, "-m", "appliance.cli", "migrate"], env=environment,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def migrate_and_wait(database_url, **env):
    process = run_migrate(database_url, **env)
    output, _ = process.communicate(timeout=60)
    return process.returncode, output


def query(database_url, sql):
    with psycopg2.connect(database_url) as connection, connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall() if cursor.description else None


def tables(database_url):
    return {row[0] for row in query(database_url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


def test_migrate_creates_the_views_and_they_stay_after_the_process_exits(empty_database_url):
    code, output = migrate_and_wait(empty_database_url)
    assert code == 0, output
    assert f"to head {HEAD}" in output
    assert set(Base.metadata.tables) | {VERSION_TABLE} <= tables(empty_database_url)
    assert query(empty_database_url, f"SELECT version_num FROM {VERSION_TABLE}") == [(HEAD,)]


def test_the_seeds_example_insert_works_on_a_migrated_database(database_url):
    query(database_url, "INSERT INTO workflow_runs (workflow_name, status) VALUES ('test_workflow', 'running');")
    assert query(database_url, "SELECT workflow_name, status FROM workflow_runs") == [("test_workflow", "running")]


def test_migrating_twice_changes_nothing(database_url):
    code, output = migrate_and_wait(database_url)
    assert code == 0 and "nothing to migrate" in output


def test_alembic_leaves_the_event_store_alone_and_finds_no_drift(empty_database_url):
    tracker = WorkflowTracker(database_url=empty_database_url)
    run_id = tracker.initiate_workflow("kept", "", None, None)
    tracker.close()
    assert migrate_and_wait(empty_database_url)[0] == 0
    assert query(empty_database_url, "SELECT count(*) FROM workflowtracker_events") == [(1,)]
    engine = create_engine(empty_database_url)
    try:
        with engine.connect() as connection:
            command.check(alembic_config(DEFAULT_MIGRATIONS_DIR, connection))  # raises on drift
    finally:
        engine.dispose()
    assert run_id


def test_five_migrators_at_once_apply_the_revision_exactly_once(empty_database_url):
    processes = [run_migrate(empty_database_url) for _ in range(5)]
    results = [(p.wait(timeout=90), p.stdout.read()) for p in processes]
    assert [code for code, _ in results] == [0] * 5, results
    applied = [output for _, output in results if "migrating from an empty schema" in output]
    assert len(applied) == 1, results
    assert query(empty_database_url, f"SELECT version_num FROM {VERSION_TABLE}") == [(HEAD,)]


def test_the_skip_flag_leaves_the_schema_alone(empty_database_url):
    code, output = migrate_and_wait(empty_database_url, APPLIANCE_RUN_MIGRATIONS="0")
    assert code == 0 and "leaving the schema as it is" in output
    assert not set(Base.metadata.tables) & tables(empty_database_url)


@pytest.fixture
def unversioned_views(empty_database_url):
    engine = create_engine(empty_database_url)
    Base.metadata.create_all(engine)
    engine.dispose()
    return empty_database_url


def test_views_without_a_version_table_are_refused_by_default(unversioned_views):
    code, output = migrate_and_wait(unversioned_views)
    assert code == 1
    assert "APPLIANCE_ALLOW_AUTO_STAMP=1" in output
    assert VERSION_TABLE not in tables(unversioned_views)


def test_views_without_a_version_table_are_stamped_once_when_allowed(unversioned_views):
    code, output = migrate_and_wait(unversioned_views, APPLIANCE_ALLOW_AUTO_STAMP="1")
    assert code == 0 and "stamping them at head" in output
    assert query(unversioned_views, f"SELECT version_num FROM {VERSION_TABLE}") == [(HEAD,)]
    code, output = migrate_and_wait(unversioned_views, APPLIANCE_ALLOW_AUTO_STAMP="1")
    assert code == 0 and "nothing to migrate" in output


def test_a_bad_database_url_exits_2_without_repeating_it():
    code, output = migrate_and_wait("mysql://root:hunter2@db/x")
    assert code == 2
    assert "DATABASE_URL must be a postgresql:// URL" in output
    assert "hunter2" not in output
