"""`appliance reproject`: rebuild every view table from the event store.

It takes the projector lock, so no live projector interleaves with it (a
running one must be stopped first, or `wait=True` waits for it). It empties
the view tables (not change_notifications) and rewinds the position in one
transaction, then replays the whole log in big batches, each its own
transaction. Up to the newest event at its start (the marker in
projection_rebuild, see store.reset) the change triggers are silenced, so
the replay does not flood change_notifications or fire webhooks for old runs
again; events recorded while it runs come after the marker and reach the
feed as usual. Interrupted, it leaves views that are behind, never wrong: the
next projector goes on from the position, as quietly up to the marker.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, TextIO

from tqdm import tqdm

from appliance import biomero_guard, db, staleness
from appliance.config import Settings
from appliance.projection import biomero, quarantine, store
from appliance.projection.projector import STANDBY_RETRY, ProjectorBusy

if TYPE_CHECKING:
    from appliance.tracker import WorkflowTracker

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 10_000


@dataclass(frozen=True)
class Reprojection:
    events: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def __str__(self) -> str:
        return f"{self.events:,} events in {self.seconds:.1f} s: {self.rate:,.0f} events/s"


def reproject(tracker: WorkflowTracker, *, batch_size: int = DEFAULT_BATCH_SIZE, wait: bool = False,
              progress: TextIO | None = None, stale_after: float = 0, biomero_views: bool = False,
              biomero_views_off_since: int = 0) -> Reprojection:
    """Rebuild the views from the log; a progress bar goes to `progress` if given.

    Runs silent for more than `stale_after` seconds (0: never) are marked
    stale in the transaction of the last batch, as the live projector would.
    With `biomero_views` (APPLIANCE_BIOMERO_VIEWS), BIOMERO's four tables are
    emptied and rebuilt too, unless BIOMERO's own views still write them, past
    `biomero_views_off_since` (biomero_guard.BiomeroViewsWriting, before anything is emptied).

    Raises ProjectorBusy if the projector lock is held and `wait` is false,
    ValueError for a batch size below 1 and store.ViewsMissing on a database
    never migrated, both before anything is emptied.
    """
    check_batch_size(batch_size)
    connection = db.connect(tracker.settings.database_url, "appliance-reproject")
    try:
        store.check_views(connection, biomero_views)
        recorder = store.tracking_recorder(tracker.factory.datastore)
        upstreams = store.present_upstreams(connection)
        for upstream in upstreams:
            store.prepare(recorder, connection, upstream)
        _take_lock(connection, wait, progress)
        if biomero_views:
            with connection.transaction() as cursor:
                biomero_guard.check(cursor, biomero_views_off_since)
        started = time.perf_counter()
        store.reset(connection, upstreams, biomero_views=biomero_views, empty_biomero_tables=True)
        quarantine.clear(connection, upstreams)
        mappers = {store.APPLIANCE: tracker.mapper, store.BIOMERO: biomero.mapper_like(tracker.mapper)}
        events = 0
        total = sum(store.max_notification_id(connection, upstream) for upstream in upstreams)
        with tqdm(total=total, unit=" events", unit_scale=True,
                  # None: tqdm draws no bar unless `progress` is a terminal (a log stays clean)
                  file=progress, disable=True if progress is None else None, desc="reproject") as bar:
            for upstream in upstreams:
                last = upstream is upstreams[-1]
                events += _replay(connection, upstream, mappers[upstream], batch_size, bar,
                                  partial(_at_end, upstream=upstream, stale_after=stale_after if last else 0),
                                  biomero_views)
        return Reprojection(events, time.perf_counter() - started)
    finally:
        connection.close()


def _replay(connection, upstream: store.Upstream, mapper, batch_size: int, bar, at_end, biomero_views: bool) -> int:
    """One log from its start (position 0: its first event included) to its end; the events applied."""
    events = position = 0
    while True:
        # Quiet up to the marker store.reset left (the old history); events
        # recorded while the rebuild runs come after it and reach the feed.
        batch = quarantine.project_or_quarantine(connection, mapper, batch_size, at_end=at_end, upstream=upstream,
                                                 biomero_views=biomero_views)
        events += batch.applied
        if batch.position is not None:
            bar.update(batch.position - position)
            position = batch.position
        if not batch.more:
            return events


def _at_end(cursor, *, upstream: store.Upstream, stale_after: float) -> None:
    # In the last batch's transaction: no moment where the rebuilt views show
    # a silent run as running, waiting for the projector's next check.
    staleness.mark_stale_runs(cursor, stale_after)
    store.end_rebuild(cursor, upstream)


def check_batch_size(batch_size: int) -> None:
    # 0 would replay nothing forever and a negative LIMIT fail, both after the views were emptied.
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"the batch size must be a whole number of at least 1, not {batch_size!r}")


def _take_lock(connection, wait: bool, progress: TextIO | None) -> None:
    said = False
    while not store.try_lock(connection):
        holder = store.lock_holder(connection)
        if not wait:
            raise ProjectorBusy(
                f"a projector is running, {holder}: stop it first (supervisorctl stop projector) "
                "or pass --wait; it can be started again afterwards"
            )
        if not said and progress is not None:
            print(f"waiting for the projector lock, held by {holder}", file=progress)
            said = True
        time.sleep(STANDBY_RETRY)


def run_reproject(settings: Settings, *, batch_size: int = DEFAULT_BATCH_SIZE, wait: bool = False) -> int:
    """`appliance reproject`: progress bar on stderr, then the events-per-second line.

    Exit 2 for a bad batch size, 1 when the database is unreachable, not
    migrated or busy, or BIOMERO's own views write the tables it would rebuild;
    in each case with one line on stderr and nothing changed.
    """
    try:
        check_batch_size(batch_size)
        _check_views(settings)  # before the tracker, which would create the event store's tables
        result = _reproject(settings, batch_size, wait)
    except ValueError as error:
        print(f"appliance reproject: {error}", file=sys.stderr)
        return 2
    except (ProjectorBusy, store.ViewsMissing, biomero_guard.BiomeroViewsWriting) as error:
        print(f"appliance reproject: {error}", file=sys.stderr)
        return 1
    except db.DISCONNECTED as error:
        # The driver's message names host and port, never the password.
        print(f"appliance reproject: cannot reach the database: {db.first_line(error)}", file=sys.stderr)
        return 1
    print(result)
    return 0


def _check_views(settings: Settings) -> None:
    connection = db.connect(settings.database_url, "appliance-reproject")
    try:
        store.check_views(connection, settings.biomero_views)
    finally:
        connection.close()


def _reproject(settings: Settings, batch_size: int, wait: bool) -> Reprojection:
    from appliance.tracker import WorkflowTracker

    tracker = WorkflowTracker(settings)
    try:
        return reproject(tracker, batch_size=batch_size, wait=wait, progress=sys.stderr,
                         stale_after=settings.run_stale_after, biomero_views=settings.biomero_views,
                         biomero_views_off_since=settings.biomero_views_off_since)
    finally:
        tracker.close()
