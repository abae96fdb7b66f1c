"""init-db functions and triggers, and their installer."""

import json
import os
import select
import subprocess
import sys
import uuid

import psycopg2
import pytest

from appliance.config import DEFAULT_INIT_DB_DIR, Settings, parse_database_url
from appliance.triggers import TriggerInstallError, install_triggers


def connect(database_url):
    connection = psycopg2.connect(database_url)
    connection.autocommit = True
    return connection


def rows(database_url, sql, *params):
    with connect(database_url) as connection, connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else None


def run_cli(database_url, *args, **env):
    return subprocess.run(
        [sys.executable, "-m", "appliance.cli", *args], env={**os.environ, "DATABASE_URL": database_url, **env},
        capture_output=True, text=True, timeout=60,
    )


def literally(database_url, sql):
    """Run one statement exactly as written (no parameters, so % is just %): its rows as dicts."""
    with connect(database_url) as connection, connection.cursor() as cursor:
        cursor.execute(sql)
        if cursor.description is None:
            return None
        names = [column.name for column in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]


def test_the_seeds_examples_work_as_written(database_url):
    literally(database_url, "INSERT INTO workflow_runs (workflow_name, status) VALUES ('test_workflow', 'running');")
    latest = literally(database_url, "SELECT * FROM change_notifications ORDER BY timestamp DESC LIMIT 5;")
    [change] = latest
    assert (change["table_name"], change["operation"], change["processed"]) == ("workflow_runs", "INSERT", False)
    assert change["new_values"]["workflow_name"] == "test_workflow" and change["new_values"]["status"] == "running"
    assert change["row_key"] == {"id": change["new_values"]["id"]} and change["old_values"] is None
    assert "workflow_name" in change["changed_fields"] and change["timestamp"] is not None
    assert literally(database_url, "SELECT * FROM get_recent_changes('2024-01-01'::timestamp);") == latest
    triggers = literally(database_url, "SELECT tgname FROM pg_trigger WHERE tgname LIKE '%notify%';")
    assert sorted(row["tgname"] for row in triggers) == [
        "job_accounting_notify_change", "job_executions_notify_change",
        "log_entries_notify_change", "workflow_runs_notify_change",
    ]


def test_an_update_records_only_the_changed_fields(database_url):
    rows(database_url, "INSERT INTO workflow_runs (workflow_name, status) VALUES ('w', 'running')")
    rows(database_url, "UPDATE workflow_runs SET status = 'running'")  # no change: no row
    rows(database_url, "UPDATE workflow_runs SET status = 'failed', error_message = 'boom'")
    rows(database_url, "DELETE FROM workflow_runs")
    changes = rows(database_url, "SELECT operation, changed_fields, old_values, new_values FROM change_notifications "
                                 "ORDER BY id")
    assert [c[0] for c in changes] == ["INSERT", "UPDATE", "DELETE"]
    assert changes[1][1:] == (["error_message", "status"], {"error_message": None, "status": "running"},
                              {"error_message": "boom", "status": "failed"})
    assert changes[2][3] is None and changes[2][2]["workflow_name"] == "w"


def test_the_key_of_a_job_accounting_row_is_both_columns(database_url):
    run_id, task_id = uuid.uuid4(), uuid.uuid4()
    rows(database_url, "INSERT INTO workflow_runs (id, workflow_name) VALUES (%s, 'w')", str(run_id))
    rows(database_url, "INSERT INTO job_executions (id, run_id, task_name) VALUES (%s, %s, 't')", str(task_id), str(run_id))
    rows(database_url, "INSERT INTO job_accounting (job_id, task_id, run_id) VALUES ('4711', %s, %s)",
         str(task_id), str(run_id))
    [(key,)] = rows(database_url, "SELECT row_key FROM change_notifications WHERE table_name = 'job_accounting'")
    assert key == {"job_id": "4711", "task_id": str(task_id)}


def test_the_notification_is_small_whatever_the_row_holds(database_url):
    listener = connect(database_url)
    listener.cursor().execute("LISTEN table_changes")
    huge = "x" * 100_000
    rows(database_url, "INSERT INTO workflow_runs (workflow_name, description) VALUES (%s, %s)", huge, huge)
    assert select.select([listener], [], [], 5)[0], "no notification within 5 s"
    listener.poll()
    payload = json.loads(listener.notifies[0].payload)
    assert len(listener.notifies[0].payload) < 300
    assert set(payload) == {"id", "table", "op", "key"} and payload["table"] == "workflow_runs"
    listener.close()


def test_a_quiet_transaction_writes_no_changes(database_url):
    with connect(database_url) as connection, connection.cursor() as cursor:
        cursor.execute("BEGIN; SET LOCAL appliance.suppress_change_notifications = 'on'; "
                       "INSERT INTO workflow_runs (workflow_name) VALUES ('replayed'); COMMIT;")
    assert rows(database_url, "SELECT count(*) FROM workflow_runs") == [(1,)]
    assert rows(database_url, "SELECT count(*) FROM change_notifications") == [(0,)]


CATALOG = {
    "functions": "SELECT p.oid, p.proname, pg_get_functiondef(p.oid) FROM pg_proc p "
                 "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public' AND p.prokind = 'f' "
                 "ORDER BY p.oid",
    "triggers": "SELECT t.oid, t.tgname, t.tgenabled, pg_get_triggerdef(t.oid) FROM pg_trigger t "
                "WHERE NOT t.tgisinternal ORDER BY t.oid",
    "tables": "SELECT c.oid, c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
              "WHERE n.nspname = 'public' ORDER BY c.oid",
}


def catalog(database_url):
    return {name: rows(database_url, sql) for name, sql in CATALOG.items()}


def test_installing_twice_changes_nothing_and_succeeds(database_url):
    before = catalog(database_url)  # the test database was made by `init` already
    assert {name for _, name, *_ in before["triggers"]} >= {"workflow_runs_notify_change", "log_entries_notify_change"}
    assert {name for _, name, _ in before["functions"]} >= {"notify_change", "get_recent_changes"}
    first = run_cli(database_url, "install-triggers")
    assert first.returncode == 0, first.stderr
    assert catalog(database_url) == before
    second = run_cli(database_url, "init")
    assert second.returncode == 0, second.stderr
    assert "installed 1 script(s)" in second.stdout
    assert catalog(database_url) == before


def test_init_with_install_triggers_0_migrates_but_installs_no_trigger(empty_database_url):
    result = run_cli(empty_database_url, "init", APPLIANCE_INSTALL_TRIGGERS="0")
    assert result.returncode == 0, result.stderr
    assert "leaving functions and triggers as they are" in result.stdout
    assert rows(empty_database_url, "SELECT to_regclass('workflow_runs')::text") == [("workflow_runs",)]
    assert rows(empty_database_url, "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal") == [(0,)]
    # The functions belong to the revisions (versioned): the flag is about the triggers only.
    assert rows(empty_database_url, "SELECT count(*) FROM pg_proc WHERE proname IN "
                                    "('notify_change', 'record_change_v1', 'get_recent_changes')") == [(3,)]


def test_installers_running_at_once_all_succeed(database_url):
    # Unlocked, concurrent CREATE OR REPLACE FUNCTION fails with "tuple concurrently updated".
    commands = ["install-triggers", "install-triggers", "init"]
    processes = [subprocess.Popen([sys.executable, "-m", "appliance.cli", command],
                                  env={**os.environ, "DATABASE_URL": database_url},
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for command in commands]
    outputs = [process.communicate(timeout=60)[0] for process in processes]
    assert [process.returncode for process in processes] == [0] * len(commands), outputs
    assert rows(database_url, "SELECT count(*) FROM pg_trigger WHERE tgname LIKE '%%notify_change'") == [(4,)]


def test_a_failing_script_rolls_back_whole_and_names_the_file(database_url, tmp_path):
    for script in sorted(DEFAULT_INIT_DB_DIR.glob("*.sql")):
        (tmp_path / script.name).write_text(script.read_text())
    (tmp_path / "05-new-function.sql").write_text(
        "CREATE FUNCTION installed_before_failure() RETURNS int LANGUAGE sql AS 'SELECT 1';")
    (tmp_path / "99-broken.sql").write_text("CREATE FUNCTION broken( RETURNS;")
    result = run_cli(database_url, "install-triggers", APPLIANCE_INIT_DB_DIR=str(tmp_path))
    assert result.returncode == 1
    assert "99-broken.sql failed" in result.stderr and "syntax error" in result.stderr
    assert rows(database_url, "SELECT count(*) FROM pg_proc WHERE proname = 'installed_before_failure'") == [(0,)]
    with pytest.raises(TriggerInstallError):
        install_triggers(Settings(database_url=parse_database_url(database_url), init_db_dir=tmp_path),
                         announce=lambda line: None)


def test_the_skip_flag_installs_nothing(empty_database_url):
    result = run_cli(empty_database_url, "install-triggers", APPLIANCE_INSTALL_TRIGGERS="0")
    assert result.returncode == 0 and "leaving functions and triggers" in result.stdout
    assert rows(empty_database_url, "SELECT count(*) FROM pg_proc WHERE proname = 'notify_change'") == [(0,)]


def test_live_projection_feeds_the_changes_and_a_reprojection_stays_quiet(tracker, database_url):
    from appliance.projection import Projector, reproject

    run_id = tracker.initiate_workflow("fed", "", None, None)
    tracker.start_workflow(run_id)
    tracker.record_log(run_id, "hello")
    Projector(tracker).catch_up()
    fed = rows(database_url, "SELECT count(*) FROM change_notifications")[0][0]
    assert fed >= 2
    reproject(tracker)
    assert rows(database_url, "SELECT count(*) FROM change_notifications")[0][0] == fed
    assert rows(database_url, "SELECT status FROM workflow_runs") == [("running",)]


def test_init_against_an_unreachable_database_is_one_clear_line():
    result = run_cli("postgresql://app:hunter2@127.0.0.1:1/nowhere", "init")
    assert result.returncode == 1
    assert "database error on postgresql+psycopg2://app:***@127.0.0.1:1/nowhere" in result.stderr
    assert "Traceback" not in result.stderr and "hunter2" not in result.stderr + result.stdout


def copy_of_init_db(tmp_path):
    folder = tmp_path / "init-db"
    folder.mkdir()
    for script in DEFAULT_INIT_DB_DIR.glob("*.sql"):
        (folder / script.name).write_text(script.read_text())
    (folder / "05-new-function.sql").write_text(
        "CREATE OR REPLACE FUNCTION installed_before_failure() RETURNS int LANGUAGE sql AS 'SELECT 1';")
    return folder


def nothing_installed(database_url):
    return rows(database_url, "SELECT count(*) FROM pg_proc WHERE proname = 'installed_before_failure'") == [(0,)]


@pytest.mark.parametrize("make_bad, message", [
    (lambda folder: (folder / "40-latin1.sql").write_bytes(b"-- caf\xe9\nSELECT 1;"),
     "40-latin1.sql: not UTF-8 text (byte 0xe9 at offset 6)"),
    (lambda folder: (folder / "40-folder.sql").mkdir(), "40-folder.sql: cannot read it: Is a directory"),
    (lambda folder: (folder / "40-gone.sql").symlink_to(folder / "nowhere.sql"),
     "40-gone.sql: cannot read it: No such file or directory"),
    (lambda folder: (folder / "extra.sql").write_text("SELECT 1;"),
     "extra.sql: not named NN-name.sql"),
], ids=["not-utf8", "a-folder", "dangling-link", "misnamed"])
def test_a_script_that_cannot_be_read_or_placed_is_one_line_and_nothing_is_installed(
        database_url, tmp_path, make_bad, message):
    folder = copy_of_init_db(tmp_path)
    make_bad(folder)
    result = run_cli(database_url, "install-triggers", APPLIANCE_INIT_DB_DIR=str(folder))
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert message in result.stderr and "nothing was installed" in result.stderr
    assert nothing_installed(database_url)


def test_init_reads_the_scripts_before_it_migrates(empty_database_url, tmp_path):
    folder = copy_of_init_db(tmp_path)
    (folder / "40-latin1.sql").write_bytes(b"\xff\xfeS\x00")
    result = run_cli(empty_database_url, "init", APPLIANCE_INIT_DB_DIR=str(folder))
    assert result.returncode == 1 and "40-latin1.sql: not UTF-8 text" in result.stderr
    assert rows(empty_database_url, "SELECT to_regclass('workflow_runs'), to_regclass('alembic_version_appliance')") \
        == [(None, None)]


def test_scripts_run_in_the_order_of_their_numbers(database_url, tmp_path):
    folder = copy_of_init_db(tmp_path)
    # By name, 100- would come before 90-; by number it comes after and finds the table.
    (folder / "90-make.sql").write_text("CREATE TABLE IF NOT EXISTS ordered (n int);")
    (folder / "100-use.sql").write_text("CREATE OR REPLACE VIEW ordered_view AS SELECT n FROM ordered;")
    result = run_cli(database_url, "install-triggers", APPLIANCE_INIT_DB_DIR=str(folder))
    assert result.returncode == 0, result.stderr
    assert "05-new-function.sql, 10-change-notifications.sql, 90-make.sql, 100-use.sql" in result.stdout
    assert rows(database_url, "SELECT to_regclass('ordered_view')::text") == [("ordered_view",)]


@pytest.mark.parametrize("version_num, shown", [(130011, "PostgreSQL 13 "), (90624, "PostgreSQL 9.6 ")])
def test_a_server_older_than_14_is_refused_by_name(version_num, shown):
    from appliance.triggers import check_server_version

    with pytest.raises(TriggerInstallError, match="PostgreSQL 14 or newer is needed") as refused:
        check_server_version(version_num)
    assert shown in str(refused.value)
    check_server_version(140000)  # 14.0 itself is enough
