"""One log format for every program of the appliance (docs/deploy.md, "Logs").

Every line names its program and carries a time, whoever wrote it: a logging
record, a print, a traceback, gunicorn, supervisord itself (appliance.supervise)
and the entrypoint (which writes the same shape in bash). LOG_FORMAT picks:

  text  2026-11-22 23:16:54,181 projector INFO appliance.projection: caught up
  json  {"time": "2026-11-22T23:16:54.181+00:00", "program": "projector", "level": "INFO",
         "logger": "appliance.projection", "message": "caught up"}

A message of several lines (a traceback) stays one JSON object; in text each of
its lines carries the prefix.
"""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
import time
from datetime import datetime, timezone
from typing import Callable, TextIO

TEXT, JSON = "text", "json"
FORMATS = (TEXT, JSON)


def text_time(seconds: float) -> str:
    """Python logging's and supervisord's shape: local time, milliseconds after a comma."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds)) + f",{int(seconds % 1 * 1000):03d}"


def format_line(log_format: str, program: str, level: str, message: str, *,
                logger: str | None = None, seconds: float | None = None, traceback: str | None = None) -> str:
    """One record as its line(s), each ending in a newline."""
    seconds = time.time() if seconds is None else seconds
    if log_format == JSON:
        record = {"time": datetime.fromtimestamp(seconds, timezone.utc).astimezone().isoformat(timespec="milliseconds"),
                  "program": program, "level": level}
        if logger:
            record["logger"] = logger
        record["message"] = message
        if traceback:
            record["traceback"] = traceback
        return json.dumps(record, ensure_ascii=False, default=str) + "\n"
    prefix = f"{text_time(seconds)} {program} {level} " + (f"{logger}: " if logger else "")
    lines = message.splitlines() or [""]
    if traceback:
        lines += traceback.splitlines()
    return "".join(f"{prefix}{line}\n" for line in lines)


class RecordFormatter(logging.Formatter):
    """A logging.Formatter that writes records in the appliance's format for one program."""

    def __init__(self, log_format: str, program: str, logger: str | None = None):
        super().__init__()
        self.log_format, self.program, self.logger = log_format, program, logger

    def format(self, record: logging.LogRecord) -> str:
        traceback = self.formatException(record.exc_info) if record.exc_info else None
        level = "WARN" if record.levelname == "WARNING" else record.levelname
        return format_line(self.log_format, self.program, level, record.getMessage(),
                           logger=self.logger or record.name, seconds=record.created,
                           traceback=traceback).rstrip("\n")


class LineStream(io.TextIOBase):
    """A text stream (sys.stdout, sys.stderr) that writes each complete line as a log line.

    What a program prints (and a traceback Python writes on its way out) then
    looks like its logging records. Thread-safe; a partial line waits for its end.
    """

    def __init__(self, raw: TextIO, log_format: str, program: str, level: str):
        super().__init__()
        self.raw, self.log_format, self.program, self.level = raw, log_format, program, level
        self._pending = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            *lines, self._pending = (self._pending + text).split("\n")
            if lines:
                self.raw.write("".join(format_line(self.log_format, self.program, self.level, line)
                                       for line in lines))
                self.raw.flush()
        return len(text)

    def flush(self) -> None:
        self.raw.flush()

    def close_pending(self) -> None:
        if self._pending:
            self.write("\n")

    def isatty(self) -> bool:
        return False  # what is written here is a log, never a terminal's: no progress bars

    def fileno(self) -> int:
        return self.raw.fileno()

    @property
    def encoding(self) -> str:
        return self.raw.encoding


_installed = TEXT


def current_format() -> str:
    """The format install() set in this process (gunicorn's logger asks, in the web's process)."""
    return _installed


def install(program: str, log_format: str, level: int = logging.INFO) -> Callable[[], None]:
    """This process's logging records, prints and tracebacks, all as the program's log lines.

    Returns what undoes it (for a command run in-process, as the tests do).
    """
    global _installed
    _installed = log_format
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RecordFormatter(log_format, program))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout = LineStream(stdout, log_format, program, "INFO")
    sys.stderr = LineStream(stderr, log_format, program, "ERROR")

    def restore() -> None:
        sys.stdout.close_pending()
        sys.stderr.close_pending()
        sys.stdout, sys.stderr = stdout, stderr
        logging.getLogger().removeHandler(handler)

    return restore


def rename(program: str) -> None:
    """The lines from now on name `program`: for one process that runs several commands'
    steps in turn (`appliance prepare`), each writing as its own command does."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, LineStream):
            stream.close_pending()
            stream.program = program
    for handler in logging.getLogger().handlers:
        if isinstance(handler.formatter, RecordFormatter):
            handler.formatter.program = program


def use_format(handler: logging.Handler, log_format: str, program: str, logger: str) -> None:
    """A handler made by someone else (gunicorn's) writes the appliance's format, to the real stream."""
    handler.setFormatter(RecordFormatter(log_format, program, logger))
    if isinstance(handler, logging.StreamHandler) and isinstance(handler.stream, LineStream):
        handler.setStream(handler.stream.raw)
