"""Sending events to the appliance without ever slowing or breaking Snakemake.

Snakemake's logging thread only puts events in a bounded queue. A background
thread sends them in batches (POST /api/v1/events, docs/ingest.md). When the
appliance cannot be reached, events go to the spool on disk and are sent from
there, in order, once it answers again; until then newer events follow them
into the spool, so nothing overtakes. At exit the thread gets a bounded time
to finish; what is left stays in the spool for the next run or `flush`.
"""

from __future__ import annotations

import http.client
import json
import queue
import re
import shlex
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Callable

from snakemake_logger_plugin_appliance import spool as spooling

BATCH_SIZE = 1000
BATCH_BYTES = 1_000_000
# Seconds to wait for more events before sending a batch: fewer, larger
# batches cost the appliance less (one transaction each) than many small ones.
LINGER = 1.0
RETRY_MIN, RETRY_MAX = 1.0, 30.0  # seconds between attempts while unreachable
EXIT_RETRY = 0.5  # seconds between attempts while Snakemake waits at exit


class Unreachable(Exception):
    """No answer, or one that says "try again later" (5xx, 429): keep the events."""


class Refused(Exception):
    """A wrong URL or token: trying again will not help until a person fixes it."""


class Rejected(Exception):
    """HTTP 400 or 409: the appliance named bad events or a taken id; resending them would fail again."""


class TooLarge(Exception):
    """HTTP 413: more events or bytes than the appliance takes in one request."""


def url_problem(url: str | None) -> str | None:
    """What makes `url` unusable as the appliance's address, or None. Checked once at
    start: a malformed address would otherwise look like an appliance that is down."""
    try:
        parts = urllib.parse.urlsplit(url or "")
        parts.port  # raises ValueError for a port that is not a number
    except ValueError:
        return "its port is not a number"
    if parts.scheme not in ("http", "https"):
        return "it does not start with http:// or https://"
    if not parts.hostname:
        return "it names no host"
    if parts.username is not None or "@" in parts.netloc:
        return "it holds a user name or password (the appliance takes its token, not these)"
    return None


def masked(url: str) -> str:
    """`url` with its user name and password (if any) hidden: fit for messages.
    Also for an address without a scheme (bob:pw@host:8000), which urlsplit misreads."""
    scheme, slashes, rest = url.partition("//")
    if not slashes:
        scheme, rest = "", url
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    if "@" not in authority:
        return url
    return scheme + slashes + "***@" + authority.rpartition("@")[2] + rest[len(authority):]


def endpoint(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith("/api/v1/events") else url + "/api/v1/events"


def post(url: str, token: str, events: list[dict] | list[str], timeout: float) -> dict:
    """POST one batch (events, or events already encoded); raises Unreachable, Refused or Rejected."""
    encoded = [event if isinstance(event, str) else encode_event(event) for event in events]
    request = urllib.request.Request(
        endpoint(url), data=('{"events":[' + ",".join(encoded) + "]}").encode(), method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        detail = error.read(2000).decode("utf-8", "replace").strip()
        if error.code in (400, 409):  # bad events, or a run or task id already taken: the same again fails again
            raise Rejected(detail) from None
        if error.code == 413:
            raise TooLarge(detail) from None
        if error.code in (401, 403):
            raise Refused(refusal(error.code, detail)) from None
        if error.code in (404, 405):
            raise Refused(f"{masked(endpoint(url))} answered HTTP {error.code}: is --logger-appliance-url "
                          "the appliance's address (such as http://host:8000)?") from None
        raise Unreachable(f"HTTP {error.code}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as error:
        raise Unreachable(str(getattr(error, "reason", error)) or type(error).__name__) from None


def refusal(status: int, body: str) -> str:
    """What to fix after a 401 or 403, with the appliance's own reason (from its JSON error)."""
    try:
        reason = str(json.loads(body).get("error") or "").strip()
    except (ValueError, AttributeError):
        reason = ""
    if status == 403:  # the appliance takes no events at all: the fix is on its side
        return (f"the appliance does not take events (HTTP 403: {reason or 'forbidden'}); its administrator "
                "must set APPLIANCE_INGEST_TOKEN, then give you that token")
    return (f"the appliance refused the token (HTTP 401{': ' + reason if reason else ''}); check "
            "--logger-appliance-token or SNAKEMAKE_LOGGER_APPLIANCE_TOKEN")


def send_batch(url: str, token: str, encoded: list[str], timeout: float,
               rejected: Callable[[list[str], str], None]) -> None:
    """POST events, halving a batch the appliance finds too large (413); events
    it rejects go to `rejected(events, why)`. Raises Unreachable or Refused."""
    try:
        post(url, token, encoded, timeout)
    except TooLarge:
        if len(encoded) == 1:
            rejected(encoded, "larger than the appliance takes in one request (HTTP 413)")
            return
        half = len(encoded) // 2
        send_batch(url, token, encoded[:half], timeout, rejected)
        send_batch(url, token, encoded[half:], timeout, rejected)
    except Rejected as error:
        rejected(encoded, str(error))


def report(message: str) -> None:
    print(f"snakemake-logger-plugin-appliance: {message}", file=sys.stderr, flush=True)


class Sender:
    def __init__(self, url: str, token: str, spool_root: Path, *, exit_wait: float = 5.0, heartbeat: float = 60.0,
                 timeout: float = 10.0, queue_size: int = 10_000, report: Callable[[str], None] = report):
        self.url, self.token, self.timeout = url, token, timeout
        self.exit_wait, self.heartbeat = exit_wait, heartbeat
        self.spool_root = Path(spool_root)
        self.spool = spooling.Spool(self.spool_root, url)
        self.report = report
        self.sent = 0  # events the appliance took, for tests and the exit message
        self.heartbeat_run: str | None = None  # the run to send heartbeats for, while it runs
        self._queue: queue.Queue = queue.Queue(queue_size)
        self._lock = threading.Lock()  # the spool, the sequence numbers, the batch in flight
        self._seq = 0
        self._in_flight: list[spooling.Item] = []
        self._closed = False
        self._refused = False  # a wrong URL or token: spool everything, stop trying
        self._retry_at = 0.0
        self._backoff = RETRY_MIN
        self._last_activity = time.monotonic()
        self._idle_wait = min(1.0, heartbeat / 4)  # how often an idle thread looks at the clock
        self._reported: set[str] = set()
        self._exiting = False  # Snakemake is closing: the spool is retried often, within exit_wait
        self._left_behind = True  # earlier runs' spools may wait: tried at start, and again until sent
        self.problem = url_problem(url)  # a malformed URL: nothing can be sent, nothing is kept
        self._thread = threading.Thread(target=self._run, name="appliance-sender", daemon=True)

    def start(self) -> "Sender":
        if self.problem:
            self.report(f"--logger-appliance-url {masked(self.url)!r} cannot be used: {self.problem}. Give the "
                        "appliance's address, such as http://appliance.example.org:8000; this run is not recorded")
        else:
            self._thread.start()
        return self

    def put(self, events: list[dict]) -> None:
        """Queue events; never blocks. If the queue is full, they (and what is
        queued) go to the spool at once, in order."""
        if self.problem:
            return
        with self._lock:
            items = []
            for event in events:
                self._seq += 1
                items.append((self._seq, event))
                if event["type"] != "log":
                    self._last_activity = time.monotonic()
            for index, item in enumerate(items):
                try:
                    self._queue.put_nowait(item)
                except queue.Full:
                    if not self._closed:
                        self.spool.append(self._take_all() + items[index:])
                        self._once("full", "the appliance is not keeping up: events go to the spool for now")
                    return

    def close(self) -> None:
        """Send what is left, waiting `exit_wait` seconds at most; spool the rest."""
        if self.problem:
            return
        try:
            self._queue.put_nowait(None)  # the thread stops when it gets there
        except queue.Full:
            pass  # then it will not get there in time anyway
        self._thread.join(self.exit_wait)
        with self._lock:
            self._closed = True
            self.spool.append(self._in_flight + self._take_all())  # sent twice at worst: harmless
            remaining = self.spool.count
            self.spool.close()
        if remaining:
            self.report(f"{remaining} events not sent yet are kept in {self.spool.folder}; the next Snakemake "
                        f"run with this logger sends them, or: {self.flush_command()}")

    def flush_command(self) -> str:
        """The command that sends this appliance's spooled events, as the user can paste it."""
        command = f"python -m snakemake_logger_plugin_appliance flush --url {shlex.quote(masked(self.url))}"
        if self.spool_root != spooling.default_root():
            command += f" --spool-dir {shlex.quote(str(self.spool_root))}"
        return command + " (with SNAKEMAKE_LOGGER_APPLIANCE_TOKEN set)"

    # The sending thread.

    def _run(self) -> None:
        try:
            self._send_left_behind()
            while True:
                stop = self._take()
                if self._in_flight:
                    self._send_or_spool()
                elif self.heartbeat_run and time.monotonic() - self._last_activity >= self.heartbeat:
                    self.put([{"id": str(uuid.uuid4()), "type": "heartbeat", "run_id": self.heartbeat_run,
                               "time": _utc_now()}])
                if time.monotonic() >= self._retry_at:
                    self._send_left_behind()  # until a pass gets through: the appliance may have been down
                if self.spool.count and time.monotonic() >= self._retry_at:
                    self._drain_own()
                if stop:
                    break
            # At exit, keep trying the spool until close() gives up waiting: at once (the
            # appliance may be back while the backoff still waits), then every EXIT_RETRY.
            self._exiting = True
            self._retry_at = time.monotonic()
            while self.spool.count and not self._closed and not self._refused:
                if time.monotonic() >= self._retry_at:
                    self._drain_own()
                time.sleep(min(0.1, max(0.0, self._retry_at - time.monotonic())))
        except Exception as error:  # never let a bug here surface in Snakemake
            self._once("bug", f"stopped sending after an unexpected error: {error!r}")

    def _take(self) -> bool:
        """Move a batch from the queue to the batch in flight: the first event waited
        for (a second at most), then what comes within LINGER. True at the end.
        A heartbeat goes alone at once: lingering would only make it late."""
        deadline = None
        while len(self._in_flight) < BATCH_SIZE:
            try:
                wait = self._idle_wait if deadline is None else max(0.0, deadline - time.monotonic())
                item = self._queue.get(timeout=wait)
            except queue.Empty:
                return False
            if item is None:
                return True
            with self._lock:  # close() spools the batch in flight: it must hold every event taken
                self._in_flight.append(item)
            deadline = deadline or time.monotonic() + (0 if item[1]["type"] == "heartbeat" else LINGER)
        return False

    def _take_all(self) -> list[spooling.Item]:
        items = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return items
            if item is not None:
                items.append(item)

    def _send_or_spool(self) -> None:
        with self._lock:
            if self._closed:
                return
            items = list(self._in_flight)
            if self.spool.count or self._refused:
                self.spool.append(items)  # behind what waits there, to keep the order
                self._in_flight = []
                return
        try:
            self._send([event for _, event in items])
        except (Unreachable, Refused) as error:
            self._unreachable(error)
            with self._lock:
                if not self._closed:
                    self.spool.append(items)
        finally:
            with self._lock:
                self._in_flight = []

    def _send(self, events: list[dict]) -> None:
        for batch in _by_size([encode_event(event) for event in events]):
            send_batch(self.url, self.token, batch, self.timeout, self._rejected)
            self.sent += len(batch)
        if "unreachable" in self._reported and "back" not in self._reported:
            self._once("back", f"the appliance at {masked(self.url)} answers again")
        self._backoff = RETRY_MIN

    def _rejected(self, events: list[str], why: str) -> None:
        with self._lock:
            path = self.spool.set_aside([json.loads(event) for event in events])
        self._once("rejected", f"the appliance rejected {len(events)} events (kept in {path}): {why}")

    def _unreachable(self, error: Exception) -> None:
        if isinstance(error, Refused):
            self._refused = True
            self._once("refused", f"{error}. Events are kept in {self.spool.folder} (send them later with: "
                                  f"{self.flush_command()})")
        else:
            self._once("unreachable", f"cannot reach the appliance at {masked(self.url)} ({error}); events are "
                                      f"kept in {self.spool.folder} and sent when it answers again")
        if self._exiting:  # Snakemake waits at most exit_wait: no long backoff now
            self._retry_at = time.monotonic() + EXIT_RETRY
            return
        self._retry_at = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, RETRY_MAX)

    def _drain_own(self) -> None:
        if self._refused:
            return
        with self._lock:
            segments = self.spool.segments()
        for segment in segments:
            try:
                spooling.drain_segment(segment, self._send, BATCH_SIZE, self._sent_from_spool)
            except (Unreachable, Refused) as error:
                self._unreachable(error)
                return
            if self._closed:
                return

    def _sent_from_spool(self, count: int) -> bool:
        """Counts what was sent; False once close() has taken stock: the files then stay."""
        with self._lock:  # only the count under the lock put() takes; the files are drain_segment's
            if self._closed:
                return False
            self.spool.sent(count)
            return True

    def _send_left_behind(self) -> None:
        """Events spooled by Snakemake runs gone before they could send them; tried
        again (at the retry times) until one pass gets them all through."""
        if not self._left_behind or self._refused:
            return
        try:
            for _, folder, lock in spooling.left_behind(self.spool_root, self.url, own=self.spool.folder):
                try:
                    spooling.drain_folder(folder, self._send, BATCH_SIZE)
                finally:
                    lock.close()
        except (Unreachable, Refused) as error:
            self._unreachable(error)
        else:
            self._left_behind = False

    def _once(self, key: str, message: str) -> None:
        if key not in self._reported:
            self._reported.add(key)
            self.report(message)


# A lone surrogate: how Python decodes a file name that is not UTF-8
# (os.fsdecode(b"sample_\xff.fastq") == "sample_\udcff.fastq"). No JSON parser
# or database must take it, so it becomes U+FFFD before sending.
SURROGATE = re.compile("[\ud800-\udfff]")


def encode_event(event: dict) -> str:
    """One event as compact JSON the appliance takes: any undecodable character replaced."""
    encoded = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
    return SURROGATE.sub("\ufffd", encoded)


def _by_size(encoded: list[str]) -> list[list[str]]:
    """Batches of at most BATCH_BYTES (one oversized event goes alone)."""
    batches, batch, size = [], [], 0
    for event in encoded:
        length = (len(event) if event.isascii() else len(event.encode())) + 1
        if batch and size + length > BATCH_BYTES:
            batches.append(batch)
            batch, size = [], 0
        batch.append(event)
        size += length
    return batches + [batch] if batch else batches


def _utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
