"""`python -m snakemake_logger_plugin_appliance flush`: send the events that wait in the spool.

Snakemake runs that could not reach the appliance leave their events in the
spool; the next run with this logger sends them, and so does this command
(from cron, say). Folders of runs still going are left to those runs.
"""

import argparse
import json
import os
import sys
from pathlib import Path

from snakemake_logger_plugin_appliance import spool
from snakemake_logger_plugin_appliance.sender import (BATCH_SIZE, Refused, Unreachable, masked, send_batch,
                                                      url_problem)


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
    args = parser.parse_args(argv)
    token = os.environ.get("SNAKEMAKE_LOGGER_APPLIANCE_TOKEN")
    if not token:
        parser.error("set SNAKEMAKE_LOGGER_APPLIANCE_TOKEN to the appliance's ingest token")
    if args.url and url_problem(args.url):
        parser.error(f"--url {masked(args.url)!r} cannot be used: {url_problem(args.url)}")
    sent, failed = 0, 0
    for url, folder, lock in spool.left_behind(args.spool_dir, args.url):
        def rejected(events, why, base=folder.parent, url=url):
            path = spool.set_aside(base, [json.loads(event) for event in events])
            print(f"{masked(url)} rejected {len(events)} events, kept in {path}: {why}", file=sys.stderr)

        def send(batch, url=url, rejected=rejected):
            send_batch(url, token, [json.dumps(event) for event in batch], args.timeout, rejected)
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
