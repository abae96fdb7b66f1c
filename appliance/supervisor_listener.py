"""Supervisor event listener: a program that goes FATAL stops the appliance, non-zero.

A program is FATAL when supervisord gave up starting it (it exited again and
again before `startsecs`). Half an appliance is worse than none: the
orchestrator should restart the container. But supervisord exits 0 when it
is asked to shut down, whatever the reason, and a restart policy of
`on-failure` would then never restart it. So this listener first writes a
marker file naming the program, then sends SIGTERM to supervisord (its
parent). supervisord runs inside appliance.supervise, which exits 1 when it
finds the marker after supervisord has stopped.

Usage, from conf/supervisord.conf: python -m appliance.supervisor_listener MARKER_FILE [LOG_FORMAT]
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import BinaryIO

from appliance import logs

STOPPING = "SUPERVISOR_STATE_CHANGE_STOPPING"


def tokens(line: bytes) -> dict[str, str]:
    """`a:1 b:2` as {"a": "1", "b": "2"}."""
    return dict(token.split(":", 1) for token in line.decode().split())


def handle(event: str, payload: bytes, marker: Path, supervisord_pid: int, log_format: str = logs.TEXT) -> None:
    if event != "PROCESS_STATE_FATAL":
        return
    program = tokens(payload.split(b"\n", 1)[0]).get("processname", "?")
    marker.parent.mkdir(parents=True, exist_ok=True)
    temporary = marker.with_name(marker.name + ".tmp")
    temporary.write_text(program + "\n")
    temporary.replace(marker)
    sys.stderr.write(logs.format_line(
        log_format, "fatal-exit", "ERROR",
        f"program {program} could not be started (FATAL); stopping supervisord so the container exits with code 1"))
    sys.stderr.flush()
    os.kill(supervisord_pid, signal.SIGTERM)


def listen(marker: Path, stdin: BinaryIO, stdout: BinaryIO, supervisord_pid: int,
           log_format: str = logs.TEXT) -> None:
    """Until supervisord goes away or starts stopping: then this ends by itself, before
    supervisord would stop it. Its SIGTERM could otherwise end in a SIGKILL: supervisord
    sometimes notices a listener's exit only after its 1 s poll, as long as stopwaitsecs."""
    while True:
        stdout.write(b"READY\n")
        stdout.flush()
        header_line = stdin.readline()
        if not header_line:
            return  # supervisord went away
        header = tokens(header_line)
        payload = stdin.read(int(header["len"]))
        handle(header["eventname"], payload, marker, supervisord_pid, log_format)
        stdout.write(b"RESULT 2\nOK")
        stdout.flush()
        if header["eventname"] == STOPPING:
            return


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (1, 2) or args[1:] not in ([], [logs.TEXT], [logs.JSON]):
        print("usage: python -m appliance.supervisor_listener MARKER_FILE [text|json]", file=sys.stderr)
        return 2
    listen(Path(args[0]), sys.stdin.buffer, sys.stdout.buffer, os.getppid(), *args[1:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
