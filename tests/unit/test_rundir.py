"""The run folder `appliance prepare` makes for supervisord's socket (appliance/rundir.py)."""

from __future__ import annotations

import stat

from appliance.rundir import EXIT_CONFIG, prepare_run_dir


def test_a_new_run_folder_is_made_for_its_owner_alone(tmp_path):
    run_dir = tmp_path / "deeper" / "run"
    assert prepare_run_dir(run_dir) == 0
    assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700


def test_an_existing_run_folder_is_kept_as_it_is(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o755)
    run_dir.chmod(0o755)
    assert prepare_run_dir(run_dir) == 0
    assert stat.S_IMODE(run_dir.stat().st_mode) == 0o755


def test_a_run_folder_that_cannot_be_made_is_exit_2_naming_it(tmp_path, capsys):
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    assert prepare_run_dir(blocked / "run") == EXIT_CONFIG
    assert f"APPLIANCE_RUN_DIR={blocked / 'run'} cannot be created or written by" in capsys.readouterr().out
