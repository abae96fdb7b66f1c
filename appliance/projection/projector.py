"""The projector: follows the tracker's notification log, keeps the views up to date.

It follows two logs, each with its own durable position: the appliance's own
(`appliance_events`) and, when the database holds one, BIOMERO's
(`workflowtracker_events`, written by BIOMERO's own tracker, read only here,
decoded by appliance.projection.biomero). Each batch reads one log and
commits its view rows with that log's position.

One projector is active at a time. It holds a session-level advisory lock
(`store.LOCK_KEY`) on the very connection it projects through; any other
projector started against the same database waits as a standby and takes
over when the active one goes away, since its lock goes with its connection.
`appliance reproject` takes the same lock, so a replay never interleaves
with live batches. Correctness does not rest on the lock alone: every batch
also locks the tracking row (`store.project_batch`), so even two holders
could not apply an event twice; the lock keeps standbys from doing useless
work and the replay's silenced change triggers from hiding live changes.

Latency: that connection also LISTENs on the event store's channel and waits
on its socket with select(), so a NOTIFY starts the next batch at once.
(eventsourcing-sqlalchemy's subscription sleeps 0.1 s between polls of a
connection of its own; here lock, LISTEN and batches share one connection,
so losing it loses all three together and a reconnect restores all three.)
Without a notification it looks anyway every `poll_interval` seconds: a
fallback, and a heartbeat on the connection. A backlog goes in batches of
`batch_size` events, back to back.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import time
from functools import partial
from typing import TYPE_CHECKING, Callable

from sqlalchemy import inspect

from appliance import biomero_guard, db, staleness
from appliance.config import Settings
from appliance.projection import biomero, biomero_views, quarantine, store

if TYPE_CHECKING:
    from appliance.tracker import WorkflowTracker

log = logging.getLogger(__name__)

MIN_BACKOFF = 0.5
MAX_BACKOFF = 10.0
STANDBY_RETRY = 1.0  # how often a standby asks for the lock (seconds)
# How often an active projector notes that it moves (projector_progress), for
# health to tell a stuck projector (HEALTH_STUCK_AFTER) from a busy one.
PROGRESS_NOTE_INTERVAL = 10.0


class ProjectorBusy(RuntimeError):
    """Another projector (or a reprojection) holds the projector lock."""


class Projector:
    """Keeps the view tables up to date with the tracker's events.

    `run()` projects until `stop()` (from a signal handler or another thread);
    `catch_up()` applies what is recorded so far and returns, for tests and tools.
    """

    def __init__(self, tracker: WorkflowTracker | None = None, *,
                 open_tracker: Callable[[], WorkflowTracker] | None = None, batch_size: int = 1000,
                 poll_interval: float = 5.0, application_name: str = "appliance-projector", stale_after: float = 0,
                 biomero_views: bool = False, biomero_views_off_since: int = 0):
        """Give the tracker, or `open_tracker` to make one inside run()'s retries.

        A tracker needs the database (it creates the event store's tables), so
        `appliance projector` opens it the second way: started while the
        database is down, it backs off and retries instead of crashing. A
        tracker opened so is closed when run() returns.
        """
        if (tracker is None) == (open_tracker is None):
            raise TypeError("give either a tracker or open_tracker")
        self._open_tracker = open_tracker
        self._tracker: WorkflowTracker | None = None
        if tracker is not None:
            self._attach(tracker)
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.application_name = application_name
        self.events_applied = 0  # by this object, for tests and logs
        self.active = False  # holds the lock and projects (else connecting or standby)
        self._stopped = False
        self._wake: tuple[int, int] | None = None
        self._backoff = MIN_BACKOFF
        self._failures = 0  # in a row, since the last batch that succeeded
        self.stale_after = stale_after  # seconds; 0: runs are never marked stale
        self._next_stale_check = 0.0
        # APPLIANCE_BIOMERO_VIEWS: BIOMERO's four tables kept too, while BIOMERO's own
        # views stay where they were at the start (appliance.biomero_guard).
        self.biomero_views = biomero_views
        self.biomero_views_off_since = biomero_views_off_since  # APPLIANCE_BIOMERO_VIEWS_OFF_SINCE
        self._biomero_baseline: dict[str, int] = {}
        self._next_biomero_check = 0.0
        self._next_look_for_biomero = 0.0
        self._next_progress_note = 0.0

    def run(self) -> None:
        """Project until stopped, as the active projector or as a standby.

        On any failure (the database down or gone, not migrated yet, a batch
        that fails) it retries, waiting longer each time up to MAX_BACKOFF
        seconds, and back to MIN_BACKOFF only once a batch succeeds; a batch
        in hand when stopped is finished.
        """
        self._wake = os.pipe()
        os.set_blocking(self._wake[1], False)
        try:
            while not self._stopped:
                try:
                    self._serve()
                except Exception as error:  # noqa: BLE001 - logged, then retried after a pause
                    self._log_failure(error)
                    self._pause_after_error()
        finally:
            for fd in self._wake:
                os.close(fd)
            self._wake = None
            if self._open_tracker is not None and self._tracker is not None:
                self._tracker.close()
                self._tracker = None

    def stop(self) -> None:
        """Ask `run()` to return after the batch in hand; safe in a signal handler."""
        self._stopped = True
        wake = self._wake
        if wake is not None:
            try:
                os.write(wake[1], b"x")
            except (BlockingIOError, OSError):
                pass  # already woken, or run() just closed the pipe

    def catch_up(self) -> int:
        """Apply every event recorded so far, then return how many were applied.

        Raises ProjectorBusy if another projector holds the lock.
        """
        self._ensure_tracker()
        connection = db.connect(self.url, self.application_name)
        try:
            store.prepare(self._tracking, connection)
            if not store.try_lock(connection):
                raise ProjectorBusy(f"the projector lock is held by {store.lock_holder(connection)}")
            self._start_biomero_views(connection)
            total = 0
            while True:
                batches = self._project_each(connection, look_now=True)
                total += sum(batch.applied for batch in batches)
                if not any(batch.more for batch in batches):
                    self.events_applied += total
                    return total
        finally:
            connection.close()

    def position(self, upstream: store.Upstream = store.APPLIANCE) -> int:
        """The id of the last event of the upstream's log projected (0 before the first)."""
        self._ensure_tracker()
        if not inspect(self._tracking.datastore.engine).has_table(store.TRACKING_TABLE):
            return 0  # no projector has started on this database yet
        return self._tracking.max_tracking_id(upstream.name) or 0

    def _attach(self, tracker: WorkflowTracker) -> None:
        self._tracker = tracker
        self.mapper = tracker.mapper
        self._mappers = {store.APPLIANCE: tracker.mapper, store.BIOMERO: biomero.mapper_like(tracker.mapper)}
        self._following = [store.APPLIANCE]  # BIOMERO's log once it is found
        self.url = tracker.settings.database_url
        self._tracking = store.tracking_recorder(tracker.factory.datastore)

    def _ensure_tracker(self) -> None:
        if self._tracker is None:
            assert self._open_tracker is not None
            self._attach(self._open_tracker())

    def _serve(self) -> None:
        self._ensure_tracker()
        connection = db.connect(self.url, self.application_name, idle_limit=store.FENCE_SECONDS)
        try:
            store.check_views(connection, self.biomero_views)
            store.prepare(self._tracking, connection)
            if not self._wait_for_lock(connection):
                return
            with connection.transaction() as cursor:
                for upstream in (store.APPLIANCE, store.BIOMERO):  # BIOMERO's channel even before its table exists
                    cursor.execute(store.QUERIES[upstream.listen_query])
            self.active = True
            self._next_look_for_biomero = 0.0
            log.info("active: projecting from %s", self._positions(connection))
            try:
                self._start_biomero_views(connection)
                self._project(connection)
            except Exception as error:
                self._note_failure(connection, error)
                raise
            log.info("stopped at %s", self._positions(connection))
        finally:
            self.active = False
            connection.close()  # gives the lock back

    def _project(self, connection: db.Connection) -> None:
        while not self._stopped:
            batches = self._project_each(connection)
            self.events_applied += sum(batch.applied for batch in batches)
            more = any(batch.more for batch in batches)
            if not more:
                self._check_stale_runs(connection)
            self._check_biomero_views(connection)
            self._note_progress(connection)
            # Only now: a connection that succeeds before a failure that
            # persists must not bring the retries back to twice a second.
            self._backoff, self._failures = MIN_BACKOFF, 0
            if not more:
                self._wait_for_events(connection)

    def _project_each(self, connection: db.Connection, *, look_now: bool = False) -> list[store.Batch]:
        """One batch of each log followed (BIOMERO's from when it exists); an event
        that cannot be applied is set aside (appliance.projection.quarantine)."""
        self._look_for_biomero(connection, look_now)
        return [quarantine.project_or_quarantine(connection, self._mappers[upstream], self.batch_size,
                                                 upstream=upstream, biomero_views=self.biomero_views)
                for upstream in self._following]

    def _start_biomero_views(self, connection: db.Connection) -> None:
        """APPLIANCE_BIOMERO_VIEWS: refuse while BIOMERO's own views write the four tables;
        rebuild every view once when the four are behind the others (the setting was off)."""
        if not self.biomero_views:
            return
        with connection.transaction() as cursor:
            self._biomero_baseline = biomero_guard.check(cursor, self.biomero_views_off_since)
            behind = biomero_views.out_of_step(cursor)
        self._next_biomero_check = time.monotonic() + self.poll_interval
        if behind:
            upstreams = store.present_upstreams(connection)
            log.warning("BIOMERO's four view tables are behind the other views in %s (APPLIANCE_BIOMERO_VIEWS "
                        "was off): rebuilding every view from the start, quietly, writing over their rows",
                        " and ".join(behind))
            store.reset(connection, upstreams, biomero_views=True)
            quarantine.clear(connection, upstreams)

    def _check_biomero_views(self, connection: db.Connection) -> None:
        # Once a poll interval: BIOMERO's own views turned on again make two writers.
        if self.biomero_views and time.monotonic() >= self._next_biomero_check:
            with connection.transaction() as cursor:
                biomero_guard.check_unmoved(cursor, self._biomero_baseline)
            self._next_biomero_check = time.monotonic() + self.poll_interval

    def _note_progress(self, connection: db.Connection) -> None:
        if self._failures or time.monotonic() >= self._next_progress_note:
            with connection.transaction() as cursor:
                cursor.execute(quarantine.QUERIES["progressed"], {"application": store.UPSTREAM})
            self._next_progress_note = time.monotonic() + PROGRESS_NOTE_INTERVAL

    def _note_failure(self, connection: db.Connection, error: Exception) -> None:
        """One more failure in a row, for health to see; nothing when the database is away."""
        if isinstance(error, db.DISCONNECTED) or connection.closed:
            return
        try:
            with connection.transaction() as cursor:
                cursor.execute(quarantine.QUERIES["failed"], {"application": store.UPSTREAM,
                                                               "error": quarantine.describe(error)})
        except Exception:  # noqa: BLE001 - the failure itself is logged by run()
            pass

    def _look_for_biomero(self, connection: db.Connection, now: bool) -> None:
        # BIOMERO may start recording after the appliance: look once a poll interval.
        if store.BIOMERO in self._following or (not now and time.monotonic() < self._next_look_for_biomero):
            return
        self._next_look_for_biomero = time.monotonic() + self.poll_interval
        if store.present(connection, store.BIOMERO):
            store.prepare(self._tracking, connection, store.BIOMERO)
            self._following.append(store.BIOMERO)
            log.info("following BIOMERO's log (%s) too, read only, from notification %d",
                     store.BIOMERO.table, store.position(connection, store.BIOMERO))

    def _positions(self, connection: db.Connection) -> str:
        said = f"position {store.position(connection)}"
        if store.BIOMERO in self._following:
            said += f" (BIOMERO's log: position {store.position(connection, store.BIOMERO)})"
        return said

    def _wait_for_lock(self, connection: db.Connection) -> bool:
        said = False
        while not self._stopped:
            if store.try_lock(connection):
                if said:
                    log.info("the projector lock is free: taking over")
                return True
            self._backoff = MIN_BACKOFF  # the database is there; only the lock is not
            if not said:
                log.info("standby: the projector lock is held by %s; waiting", store.lock_holder(connection))
                said = True
            self._sleep(STANDBY_RETRY)
        return False

    def _check_stale_runs(self, connection: db.Connection) -> None:
        # Once a poll interval at most, and only by the active projector.
        if self.stale_after > 0 and time.monotonic() >= self._next_stale_check:
            staleness.check_stale_runs(connection, self.stale_after)
            self._next_stale_check = time.monotonic() + min(self.poll_interval, self.stale_after)

    def _wait_for_events(self, connection: db.Connection) -> None:
        """Until a NOTIFY, stop(), or poll_interval seconds."""
        assert self._wake is not None
        # Never idle as long as the fence (store.FENCE_SECONDS): a look at the log is cheap.
        wait = min(self.poll_interval, store.FENCE_SECONDS / 2)
        if self._wake[0] in connection.wait_for_notification(wait, self._wake[0]):
            _drain(self._wake[0])

    def _log_failure(self, error: Exception) -> None:
        self._failures += 1
        if db.unavailable(error):  # lost, refused, or read-only (a primary fenced in place)
            log.warning("database unavailable (%s); retrying in %.1f s", db.first_line(error), self._backoff)
        elif isinstance(error, (store.ViewsMissing, biomero_guard.BiomeroViewsWriting)):
            log.warning("%s; retrying in %.1f s", error, self._backoff)
        elif self._failures == 1:
            # A batch that fails is retried as a whole: nothing is skipped.
            log.exception("projection failed; retrying in %.1f s", self._backoff)
        else:  # the traceback was logged at the first failure of this series
            log.error("projection failed again (%s, %d times in a row); retrying in %.1f s",
                      db.first_line(error), self._failures, self._backoff)

    def _pause_after_error(self) -> None:
        self._sleep(self._backoff)
        self._backoff = min(self._backoff * 2, MAX_BACKOFF)

    def _sleep(self, seconds: float) -> None:
        if self._wake is None:
            time.sleep(seconds)
            return
        if select.select([self._wake[0]], [], [], seconds)[0]:
            _drain(self._wake[0])


def _drain(fd: int) -> None:
    os.set_blocking(fd, False)
    try:
        while os.read(fd, 64):
            pass
    except BlockingIOError:
        pass


def run_projector(settings: Settings) -> int:
    """`appliance projector`: project until SIGTERM or SIGINT, then exit 0."""
    from appliance.tracker import WorkflowTracker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Nothing here touches the database: the tracker is opened inside run()'s
    # retries, so a database that is down or not migrated yet means backing
    # off, not a traceback and exit 1 (which supervisord would soon make FATAL).
    projector = Projector(open_tracker=partial(WorkflowTracker, settings),
                          batch_size=settings.projector_batch_size,
                          poll_interval=settings.projector_poll_interval, stale_after=settings.run_stale_after,
                          biomero_views=settings.biomero_views,
                          biomero_views_off_since=settings.biomero_views_off_since)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: projector.stop())
    projector.run()
    return 0
