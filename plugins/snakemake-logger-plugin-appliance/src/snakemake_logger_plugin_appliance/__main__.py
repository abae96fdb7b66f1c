"""The plugin's commands, `python -m snakemake_logger_plugin_appliance COMMAND`.

- `flush`: send the events that wait in the spool. Snakemake runs that could
  not reach the appliance leave their events there; the next run with this
  logger sends them, and so does this command (from cron, say). Folders of
  runs still going are left to those runs.
- `replay FILE`: send the run told by a file of Snakemake's log records as
  JSON lines (the format of the plugin's capture fixtures), to import a run.
"""

import argparse
import json
import os
import sys
from pathlib import Path

from snakemake_logger_plugin_appliance import spool
from snakemake_logger_plugin_appliance.mapping import Metadata
from snakemake_logger_plugin_appliance.replay import ReplayError, read_records, replay_events
from snakemake_logger_plugin_appliance.sender import (BATCH_SIZE, Refused, Unreachable, encode_event, masked,
                                                      send_batch, url_problem)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m snakemake_logger_plugin_appliance")
    commands = parser.add_subparsers(dest="command", required=True)
    flush = commands.add_parser("flush", help="send the events that wait in the spool")
    flush.add_argument("--url", default=os.environ.get("SNAKEMAKE_LOGGER_APPLIANCE_URL"),
                       help="only the events for this appliance (default: $SNAKEMAKE_LOGGER_APPLIANCE_URL, "
                            "or every appliance with events waiting)")
    flush.add_argument("--spool-dir", type=Path,
                       default=os.environ.get("SNAKEMAKE_LOGGER_APPLIANCE_SPOOL_DIR") or spool.default_root())
    flush.add_argument("--timeout", type=float, default=30.0, help="seconds per request (default 30)")
    replay = commands.add_parser("replay", help="send a run captured as JSON lines of Snakemake's log records")
    replay.add_argument("file", type=Path, help="one log record a line, as the plugin's capture fixtures")
    replay.add_argument("--url", default=os.environ.get("SNAKEMAKE_LOGGER_APPLIANCE_URL"),
                        help="the appliance's address (default: $SNAKEMAKE_LOGGER_APPLIANCE_URL)")
    for name in ("name", "user", "group", "tags"):
        replay.add_argument(f"--{name}", default=os.environ.get(f"SNAKEMAKE_LOGGER_APPLIANCE_{name.upper()}"),
                            help=f"as --logger-appliance-{name}")
    replay.add_argument("--new-id", action="store_true",
                        help="give the run a new id (to import the same file again)")
    replay.add_argument("--timeout", type=float, default=30.0, help="seconds per request (default 30)")
    args = parser.parse_args(argv)
    token = os.environ.get("SNAKEMAKE_LOGGER_APPLIANCE_TOKEN")
    if not token:
        parser.error("set SNAKEMAKE_LOGGER_APPLIANCE_TOKEN to the appliance's ingest token")
    if args.url and url_problem(args.url):
        parser.error(f"--url {masked(args.url)!r} cannot be used: {url_problem(args.url)}")
    if args.command == "replay":
        return _replay(parser, args, token)
    return _flush(args, token)


def _replay(parser: argparse.ArgumentParser, args: argparse.Namespace, token: str) -> int:
    if not args.url:
        parser.error("give --url or set SNAKEMAKE_LOGGER_APPLIANCE_URL")
    try:
        records = read_records(args.file)
    except (OSError, ReplayError) as error:
        parser.error(str(error))
    tags = [tag.strip() for tag in (args.tags or "").split(",") if tag.strip()]
    events = replay_events(records, Metadata(args.name, args.user, args.group, tags), new_id=args.new_id,
                           warn=lambda text: print(text, file=sys.stderr))
    if not events:
        print(f"{args.file} holds no started run (no workflow_started record): nothing sent", file=sys.stderr)
        return 1
    refused = []

    def rejected(batch, why):
        refused.append(len(batch))
        print(f"{masked(args.url)} rejected {len(batch)} events: {why}", file=sys.stderr)
    try:
        for start in range(0, len(events), BATCH_SIZE):
            send_batch(args.url, token, [encode_event(event) for event in events[start:start + BATCH_SIZE]],
                       args.timeout, rejected)
    except (Unreachable, Refused) as error:
        print(f"{masked(args.url)}: {error}; nothing more sent (events are sent again harmlessly)", file=sys.stderr)
        return 1
    run_id = events[0].get("run_id")
    print(f"sent {len(events) - sum(refused)} events of run {run_id}" + (f"; {sum(refused)} rejected" if refused else ""))
    return 1 if refused else 0


def _flush(args: argparse.Namespace, token: str) -> int:
    sent, failed = 0, 0
    for url, folder, lock in spool.left_behind(args.spool_dir, args.url):
        def rejected(events, why, base=folder.parent, url=url):
            path = spool.set_aside(base, [json.loads(event) for event in events])
            print(f"{masked(url)} rejected {len(events)} events, kept in {path}: {why}", file=sys.stderr)

        def send(batch, url=url, rejected=rejected):
            send_batch(url, token, [encode_event(event) for event in batch], args.timeout, rejected)
        try:
            sent += spool.drain_folder(folder, send, BATCH_SIZE)
        except (Unreachable, Refused) as error:
            failed += 1
            print(f"{masked(url)}: {error}; {folder} kept for later", file=sys.stderr)
        finally:
            lock.close()
    print(f"sent {sent} events" + (f"; {failed} run(s) could not be sent" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
