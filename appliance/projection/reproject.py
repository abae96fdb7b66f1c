"""`appliance reproject`: rebuild every view table from the event store.

It takes the projector lock, so no live projector interleaves with it (a
running one must be stopped first, or `wait=True` waits for it). It empties
the view tables (not change_notifications) and rewinds the position in one
transaction, then replays the whole log in big batches, each its own
transaction with the change triggers silenced. Interrupted, it leaves views
that are behind, never wrong: the next projector goes on from the position.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from tqdm import tqdm

from appliance.config import Settings
from appliance.projection import store
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
              progress: TextIO | None = None) -> Reprojection:
    """Rebuild the views from the log; a progress bar goes to `progress` if given.

    Raises ProjectorBusy if the projector lock is held and `wait` is false.
    """
    connection = store.connect(tracker.settings.database_url, "appliance-reproject")
    try:
        store.prepare(store.tracking_recorder(tracker.factory.datastore), connection)
        _take_lock(connection, wait, progress)
        started = time.perf_counter()
        store.reset(connection)
        events = 0
        with tqdm(total=store.max_notification_id(connection), unit=" events", unit_scale=True,
                  file=progress, disable=progress is None, desc="reproject") as bar:
            position = 0
            while True:
                applied, last = store.project_batch(connection, tracker.mapper, batch_size, quiet=True)
                events += applied
                if last is not None:
                    bar.total = max(bar.total, last)
                    bar.update(last - position)
                    position = last
                if applied < batch_size:
                    break
        return Reprojection(events, time.perf_counter() - started)
    finally:
        connection.close()


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
    """`appliance reproject`: progress bar on stderr, then the events-per-second line."""
    from appliance.tracker import WorkflowTracker

    tracker = WorkflowTracker(settings)
    try:
        result = reproject(tracker, batch_size=batch_size, wait=wait, progress=sys.stderr)
    except ProjectorBusy as error:
        print(f"appliance reproject: {error}", file=sys.stderr)
        return 1
    finally:
        tracker.close()
    print(result)
    return 0
