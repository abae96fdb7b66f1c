"""supervisord in this very process, then exit 1 if a program could not be started.

entrypoint.sh `exec`s this as its last step, so supervisord is the container's
main process and every signal (TERM, INT, HUP, USR2) reaches it directly. But
supervisord exits 0 whenever it shuts down, also when the FATAL listener
(appliance.supervisor_listener) stopped it, and a restart policy of
`on-failure` would then never restart the container. The listener leaves a
marker file naming the program; finding it after supervisord returns, this
exits 1.

supervisord's own lines are written in the appliance's format (appliance/logs.py:
`<time> supervisord LEVEL ...`, or JSON), and two CRIT lines of every native
start are said for what they are: the socket needs no HTTP password (only its
owner may open it, chmod=0700), and running as root is the caller's choice
(the image never does).

Usage: python -m appliance.supervise MARKER_FILE LOG_FORMAT -c conf/supervisord.conf
"""

from __future__ import annotations

import sys
from pathlib import Path

from supervisor import loggers, options, poller, supervisord

from appliance import logs

EXIT_FATAL = 1
LOG_FORMAT = logs.TEXT  # main() sets it from its argument
PROGRAM = "supervisord"
# Start-up CRIT lines that describe a normal start, with their level and text here.
EXPECTED_CRITICALS = {
    "running without any HTTP authentication checking":
        ("INFO", "the control socket has no HTTP password: only its owner may open it (chmod=0700)"),
    "Supervisor is running as root":
        ("WARN", "running as root: the programs do too (the image runs as uid 10001)"),
}


class ApplianceLogHandler(loggers.StreamHandler):
    """supervisord's records as the appliance's log lines, on stdout."""

    def __init__(self, log_format_name: str):
        super().__init__(sys.stdout)
        self.log_format = log_format_name

    def emit(self, record: loggers.LogRecord) -> None:
        fields = record.asdict()
        level, message = fields["levelname"], fields["message"].rstrip("\n")
        for known, (known_level, text) in EXPECTED_CRITICALS.items():
            if known in message:
                level, message = known_level, text
        self.stream.write(logs.format_line(self.log_format, PROGRAM, level, message))
        self.flush()


def make_logger(self: options.ServerOptions) -> None:
    """ServerOptions.make_logger, writing through ApplianceLogHandler (conf/supervisord.conf
    has nodaemon=true and logfile=/dev/null: stdout is supervisord's only log)."""
    self.logger = loggers.getLogger(self.loglevel)
    handler = ApplianceLogHandler(LOG_FORMAT)
    handler.setLevel(self.logger.level)
    self.logger.addHandler(handler)
    for message in self.parse_criticals:
        self.logger.critical(message)
    for message in self.parse_warnings:
        self.logger.warn(message)
    for message in self.parse_infos:
        self.logger.info(message)


class PromptFirstPoller(poller.Poller):
    """supervisord's poller, whose first poll does not wait.

    supervisord spawns its programs after its loop's first poll, which waits for
    its whole timeout (1 s) when nothing happens, as nothing does at start: a
    second of every start-up spent idle. Every later poll waits as before.
    """

    def __init__(self, server_options: options.ServerOptions):
        super().__init__(server_options)
        self.polled = False

    def poll(self, timeout: float):
        if not self.polled:
            self.polled, timeout = True, 0
        return super().poll(timeout)


def supervise(marker: Path, supervisord_args: list[str]) -> int:
    marker.unlink(missing_ok=True)  # a marker left by an earlier run of this container
    options.ServerOptions.make_logger = make_logger
    poller.Poller = PromptFirstPoller  # ServerOptions makes its poller from this name
    supervisord.main(args=supervisord_args)
    if marker.is_file() and marker.stat().st_size:
        program = marker.read_text().strip()
        say("ERROR", f"program '{program}' could not be started; exiting {EXIT_FATAL}")
        return EXIT_FATAL
    say("INFO", "supervisord stopped")
    return 0


def say(level: str, message: str) -> None:
    sys.stderr.write(logs.format_line(LOG_FORMAT, "entrypoint", level, message))
    sys.stderr.flush()


if __name__ == "__main__":
    LOG_FORMAT = sys.argv[2]
    sys.exit(supervise(Path(sys.argv[1]), sys.argv[3:]))
