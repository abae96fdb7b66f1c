"""Events not sent yet, on disk, until the appliance takes them.

Layout: <root>/<key of the appliance URL>/ holds a `url` file and one folder
per Snakemake process. A folder holds segment files named by the sequence
number of their first event (zero-padded, so names sort in sending order) and
a `lock` file its process holds (flock) while it lives, so another process
(the next run, the `flush` command) drains only the folders of processes gone.

Order: every event gets a sequence number when it is queued. A segment holds
consecutive events, and anything written to a folder later holds later events
than every segment still there, except a batch that failed in flight, which
gets the lower name it needs. So sending segments in name order sends the
events in the order they happened. Sending twice is harmless (event ids).

Size: a segment holds SEGMENT_EVENTS events at most, one batch, so a segment
sent is a file removed, never rewritten. A larger segment (written by an
earlier version) is sent batch by batch, its progress kept in a `<name>.sent`
file beside it (the number of its events sent), so it is read once and never
rewritten either.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Callable, Iterator

Item = tuple[int, dict]  # (sequence number, event)
SEGMENT_EVENTS = 1000  # the sender's batch: one segment, one request


def default_root() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "snakemake-logger-plugin-appliance"


def url_folder(root: Path, url: str) -> Path:
    return Path(root) / hashlib.sha256(url.encode()).hexdigest()[:16]


class Spool:
    """This process's folder of segments. Callers serialise the calls (one lock)."""

    def __init__(self, root: Path, url: str):
        self.base = url_folder(root, url)
        self.folder = self.base / f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.count = 0  # events in this process's segments
        self._lock_file = None
        self._tail: Path | None = None  # the segment appended to, and its last sequence number
        self._tail_last = -1
        self._tail_count = 0
        self._url = url

    def append(self, items: list[Item]) -> None:
        """Write events (in sequence order); a gap in the numbers starts a new segment."""
        start = 0
        for end in range(1, len(items) + 1):
            if end == len(items) or items[end][0] != items[end - 1][0] + 1:
                self._write(items[start:end])
                start = end

    def _write(self, items: list[Item]) -> None:
        self._open()
        while items:
            if self._tail is None or items[0][0] != self._tail_last + 1 or self._tail_count >= SEGMENT_EVENTS:
                self._tail, self._tail_count = self.folder / f"{items[0][0]:012d}.jsonl", 0
            part, items = items[:SEGMENT_EVENTS - self._tail_count], items[SEGMENT_EVENTS - self._tail_count:]
            with open(self._tail, "a", encoding="utf-8") as segment:
                segment.writelines(json.dumps(event, separators=(",", ":")) + "\n" for _, event in part)
            self._tail_last = part[-1][0]
            self._tail_count += len(part)
            self.count += len(part)

    def segments(self) -> list[Path]:
        """This process's segments, in sending order; no more is appended to them."""
        self._tail = None
        return sorted(self.folder.glob("*.jsonl")) if self.folder.exists() else []

    def sent(self, events: int) -> None:
        """Forget events sent from a segment (drain_segment removes the files)."""
        self.count -= events

    def set_aside(self, events: list[dict]) -> Path:
        self._open()
        return set_aside(self.base, events)

    def close(self) -> None:
        if self._lock_file is not None:
            if self.folder.exists() and not any(self.folder.glob("*.jsonl")):
                shutil.rmtree(self.folder, ignore_errors=True)
            self._lock_file.close()  # releases the lock
            self._lock_file = None

    def _open(self) -> None:
        if self._lock_file is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            (self.base / "url").write_text(self._url + "\n", encoding="utf-8")
            self._lock_file = open(self.folder / "lock", "w")
            fcntl.flock(self._lock_file, fcntl.LOCK_EX)


def set_aside(base: Path, events: list[dict]) -> Path:
    """Keep events the appliance rejected (HTTP 400) apart, for a person to look at."""
    path = base / "rejected" / f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{time.time_ns()}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(event) + "\n" for event in events), encoding="utf-8")
    return path


def read_segment(segment: Path) -> list[dict]:
    try:
        text = segment.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []  # sent and removed meanwhile, by the process that wrote it
    events = []
    for line in text.splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            pass  # a line cut short by a crash while writing: it was never complete
    return events


def drain_segment(segment: Path, send: Callable[[list[dict]], None], batch_size: int,
                  on_sent: Callable[[int], bool] = lambda count: True) -> int:
    """Send a segment's events not sent yet, in batches, then remove it. After each
    batch, `on_sent(count)`; if it says False, stop there and leave the files
    (they are sent again later: harmless). Errors of `send` propagate."""
    progress = segment.with_suffix(".sent")
    events = read_segment(segment)
    done = _sent_count(progress)
    for start in range(done, len(events), batch_size):
        batch = events[start:start + batch_size]
        send(batch)
        if not on_sent(len(batch)):
            return start + len(batch) - done
        if start + batch_size < len(events):
            progress.write_text(str(start + len(batch)), encoding="utf-8")  # a few bytes, not the rest
    segment.unlink(missing_ok=True)
    progress.unlink(missing_ok=True)
    return max(len(events) - done, 0)


def left_behind(root: Path, url: str | None = None, own: Path | None = None) -> Iterator[tuple[str, Path, object]]:
    """Folders of processes gone (their lock is free), as (url, folder, held lock file)."""
    bases = [url_folder(root, url)] if url else sorted(p for p in Path(root).glob("*") if (p / "url").exists())
    for base in bases:
        if not (base / "url").exists():
            continue
        base_url = (base / "url").read_text(encoding="utf-8").strip()
        for folder in sorted(p for p in base.iterdir() if p.is_dir() and p.name != "rejected" and p != own):
            lock = open(folder / "lock", "a")
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                lock.close()  # its process is still running (or another drainer is at it)
                continue
            yield base_url, folder, lock


def drain_folder(folder: Path, send: Callable[[list[dict]], None], batch_size: int) -> int:
    """Send a left-behind folder's segments in order, removing what was sent."""
    total = 0
    for segment in sorted(folder.glob("*.jsonl")):
        total += drain_segment(segment, send, batch_size)
    shutil.rmtree(folder, ignore_errors=True)
    return total


def _sent_count(progress: Path) -> int:
    try:
        return int(progress.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return 0
