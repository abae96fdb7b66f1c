"""The `appliance` command: one subcommand per job, each a thin call into the package.

Subcommands register themselves in COMMANDS with a function that adds their
arguments and a function that runs them with the parsed arguments and the
settings read from the environment.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from dataclasses import dataclass
from typing import Callable

from appliance import logs
from appliance.config import ConfigError, Settings, log_format, parse_whole_number
from appliance.parent import exit_with_parent

EXIT_CONFIG = 2


@dataclass(frozen=True)
class Command:
    help: str
    run: Callable[[argparse.Namespace, Settings], int | None]
    add_arguments: Callable[[argparse.ArgumentParser], None] = lambda parser: None


def _start(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from appliance.files import app_file

    # As the image's entrypoint would: its programs (appliance, python) are this interpreter's,
    # also when its virtualenv is not activated.
    bin_dir = Path(sys.executable).parent
    os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    entrypoint = app_file("entrypoint.sh")
    os.execv("/bin/bash", ["bash", str(entrypoint), "start"])


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from appliance.demo import run_demo

    run_demo(settings, runs=args.runs, tasks=args.tasks, seed=args.seed, live=args.live)
    return 0


def _demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", type=_whole_number(1, 10_000), default=6,
                        help="how many workflow runs to record (default 6: a traceback, a retry, a stale run, ...)")
    parser.add_argument("--tasks", type=_whole_number(1, 100), help="at most this many tasks per run")
    parser.add_argument("--seed", type=_whole_number(0, 999_999_999),
                        help="the same runs every time (names, durations, outcomes; times relative to now)")
    parser.add_argument("--live", action="store_true", help="then keep one run going, a task every few seconds, "
                                                            "until Ctrl-C")


def _projector(args: argparse.Namespace, settings: Settings) -> int:
    from appliance.projection.projector import run_projector

    exit_with_parent()  # no orphan when supervisord dies (appliance/parent.py)
    return run_projector(settings)


def _web(args: argparse.Namespace, settings: Settings) -> int:
    from appliance.web.server import run_web

    exit_with_parent()  # no orphan when supervisord dies (appliance/parent.py)
    return run_web(settings)


def _monitor(args: argparse.Namespace, settings: Settings) -> int:
    from appliance.monitor.loop import run_monitor

    exit_with_parent()  # no orphan when supervisord dies (appliance/parent.py)
    return run_monitor(settings)


def _reproject(args: argparse.Namespace, settings: Settings) -> int:
    from appliance.projection.reproject import run_reproject

    return run_reproject(settings, batch_size=args.batch_size, wait=args.wait)


def _reproject_arguments(parser: argparse.ArgumentParser) -> None:
    # Checked here, before anything is emptied: 0 would loop forever, < 0 fail after the views were emptied.
    parser.add_argument("--batch-size", type=_whole_number(1, 1_000_000), default=10_000,
                        help="events per transaction (default 10000)")
    parser.add_argument("--wait", action="store_true", help="wait for a running projector to stop instead of failing")


def _prune(args: argparse.Namespace, settings: Settings) -> int:
    from appliance.monitor.retention import run_prune

    return run_prune(settings, days=args.days, include_unprocessed=args.include_unprocessed,
                     batch_size=args.batch_size)


def _whole_number(minimum: int, maximum: int) -> Callable[[str], int]:
    """An argparse type: a bad value is a usage error (exit 2) before anything runs."""
    def parse(text: str) -> int:
        try:
            return parse_whole_number(text, minimum, maximum)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parse


def _prune_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--days", type=_whole_number(0, 36500),
                        help="delete changes older than this many days (default CHANGE_RETENTION_DAYS, 7)")
    parser.add_argument("--include-unprocessed", action="store_true",
                        help="also delete unprocessed changes that old (when no monitor runs to process them)")
    parser.add_argument("--batch-size", type=_whole_number(1, 100_000), default=1000,
                        help="rows per transaction (default 1000)")


def _quarantine(args: argparse.Namespace, settings: Settings) -> int:
    from appliance import quarantine_cli

    return quarantine_cli.run(args, settings)


def _quarantine_arguments(parser: argparse.ArgumentParser) -> None:
    # Here, not in appliance.quarantine_cli: every command builds this parser, and importing
    # that module loads the projection, eventsourcing and SQLAlchemy's ORM (0.3-0.4 s a process).
    parser.add_argument("action", nargs="?", choices=("list", "retry", "discard"), default="list")
    parser.add_argument("kind", nargs="?", choices=("event", "change"),
                        help="an event the projector set aside, or a change the monitor gave up on")
    parser.add_argument("ids", nargs="*", help="their ids (as listed), or `all`")


def _wait_for_db(args: argparse.Namespace, settings: Settings) -> int:
    from appliance.wait_for_db import EXIT_TIMEOUT, wait_for_db

    timeout = settings.db_wait_timeout if args.timeout is None else args.timeout
    return 0 if wait_for_db(settings.database_url, timeout, out=sys.stdout) else EXIT_TIMEOUT


def _wait_for_db_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeout", type=float, help="seconds to wait (default DB_WAIT_TIMEOUT, 60)")


def _status(args: argparse.Namespace, settings: Settings) -> int:
    from appliance.status import status_command

    return status_command(settings, as_json=args.json, database_only=args.database_only)


def _status_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the state as JSON (the /api/v1/system twin)")
    parser.add_argument("--database-only", action="store_true",
                        help="judge the database's parts only: the programs run elsewhere (another container)")


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    from appliance.migrator import MigrationError, migrate

    try:
        migrate(settings, announce=lambda line: print(f"migrate: {line}", flush=True))
    except MigrationError as error:
        print(f"appliance migrate: {error}", file=sys.stderr)
        return 1
    return 0


def _schema_command(module_name: str, function_name: str) -> Callable[[argparse.Namespace, Settings], int]:
    def run(args: argparse.Namespace, settings: Settings) -> int:
        from appliance.schema import SCHEMA_ERRORS

        function = getattr(importlib.import_module(module_name), function_name)
        try:
            function(settings, announce=lambda line: print(f"{args.command}: {line}", flush=True))
        except SCHEMA_ERRORS as error:
            print(f"appliance {args.command}: {error}", file=sys.stderr)
            return 1
        return 0

    return run


_init = _schema_command("appliance.schema", "init")


def _config(args: argparse.Namespace, settings: Settings) -> int:
    from appliance.monitor.handlers import load_handler

    problems = []
    for path in settings.monitor.handlers:  # importable and callable, as the monitor will need them
        try:
            load_handler(path)
        except ValueError as error:
            problems.append(str(error))
    if problems:
        print("appliance: invalid configuration:\n" + "\n".join(f"  - {problem}" for problem in problems),
              file=sys.stderr)
        return EXIT_CONFIG
    print(f"config: {settings}")
    return 0


def _announce_init() -> int:
    """entrypoint.sh's own line before init, as it wrote it when init was a process of its own."""
    print("migrating the database and installing the triggers")
    return 0


def _prepare(args: argparse.Namespace, settings: Settings) -> int:
    """config, the run folder, wait-for-db and init in this one process: entrypoint.sh's start-up.

    As three commands they were three interpreters, each loading the command line,
    the settings and SQLAlchemy again (0.3-0.7 s apiece on 2 cores). Each step still
    writes its lines as its own command does, and ends the start-up with its exit code.
    """
    from appliance.rundir import prepare_run_dir

    steps = (
        ("config", lambda: _config(args, settings)),
        ("entrypoint", lambda: prepare_run_dir(settings.web.run_dir)),
        ("wait-for-db", lambda: _wait_for_db(argparse.Namespace(timeout=None), settings)),
        ("entrypoint", _announce_init),
        ("init", lambda: _init(argparse.Namespace(command="init"), settings)),
    )
    for program, step in steps:
        logs.rename(program)
        code = step()
        if code:
            return code
    return 0


COMMANDS: dict[str, Command] = {
    "start": Command("run the appliance as the image does: check, wait for the database, init, "
                     "then supervisord (web, monitor, projector) in the foreground", _start),
    "demo": Command("record a few sample workflow runs through the tracker", _demo, _demo_arguments),
    "config": Command("check the environment and print the settings (password masked)", _config),
    "migrate": Command("bring the view tables to the newest schema, under an advisory lock", _migrate),
    "install-triggers": Command("install the init-db functions and triggers, under the advisory lock",
                                _schema_command("appliance.triggers", "install_triggers")),
    "init": Command("migrate, then install the triggers, under one advisory lock", _init),
    "prepare": Command("the start-up's steps in one process, as entrypoint.sh runs them: config, "
                       "the run folder, wait-for-db, init (exit 2, 3 or 1 as they do)", _prepare),
    "projector": Command("keep the view tables up to date with the event store (runs until SIGTERM)", _projector),
    "web": Command("serve the status pages, the JSON API and the ingest endpoint under gunicorn", _web),
    "monitor": Command("handle every change of the views: log line, webhooks, custom handlers (until SIGTERM)",
                       _monitor),
    "reproject": Command("rebuild every view table from the event store", _reproject, _reproject_arguments),
    "status": Command("the state of every part, as on /system (exit 1: something needs attention)",
                      _status, _status_arguments),
    "prune": Command("delete old change_notifications rows in small batches (see docs/monitor.md)",
                     _prune, _prune_arguments),
    "quarantine": Command("list, retry or discard the events projection and the changes the monitor set aside",
                          _quarantine, _quarantine_arguments),
    "wait-for-db": Command("wait until the database accepts connections (exit 3 after the timeout)",
                           _wait_for_db, _wait_for_db_arguments),
}


# Commands whose output goes to the appliance's log (the entrypoint's steps, supervisord's
# programs, the scheduled prune): in the one log format. The others (status, reproject,
# demo, ...) answer a person, and print as they are.
LOGGED = {"prepare", "config", "wait-for-db", "migrate", "install-triggers", "init", "web", "monitor", "projector", "prune"}
# prepare's first lines (a bad environment) are config's: its first step.
PROGRAM_OF = {"prepare": "config"}
# The programs supervisord runs.
PROGRAMS = {"web", "monitor", "projector"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="appliance", description="Workflow-tracking appliance.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in COMMANDS.items():
        subparser = subparsers.add_parser(name, help=command.help, description=command.help)
        command.add_arguments(subparser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    restore_output = None
    if args.command in LOGGED:
        # Every line names the command that wrote it: under supervisord the programs
        # share one stdout (docker logs), and this tells them apart (appliance/logs.py).
        restore_output = logs.install(PROGRAM_OF.get(args.command, args.command), log_format())
    else:
        logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {args.command} %(levelname)s %(name)s: %(message)s")
    # Alembic logs one INFO line per autogenerate plugin when it is imported: noise in docker logs.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    try:
        code = _run(args)
    finally:
        if restore_output is not None:
            restore_output()
    if args.command in PROGRAMS:
        # Its work is committed and its connections closed: it leaves without the interpreter's
        # teardown, which on a loaded machine outlasted stopwaitsecs (then supervisord's SIGKILL).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
    except ConfigError as error:
        print(f"appliance: {error}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        return COMMANDS[args.command].run(args, settings) or 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
