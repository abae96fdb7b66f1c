"""What happens when a batch meets a version conflict: the replay policy.

Concurrency is optimistic (see `cache`): a batch saved over a stale aggregate
conflicts, and nothing of it is stored. It is then replayed on fresh state, a
bounded number of times after short random pauses, with the same new ids, so
a retried batch records the same thing; the last replay holds the store's
write lock, so it cannot conflict again.
"""

from __future__ import annotations

import random
import threading
import time
from typing import TYPE_CHECKING, NoReturn

from eventsourcing.persistence import IntegrityError

from appliance.errors import ConcurrencyError, DuplicateIdError

if TYPE_CHECKING:
    from appliance.tracker.application import WorkflowTracker
    from appliance.tracker.batch import Batch

PAUSE_FIRST = 0.004  # seconds, the longest pause before the first replay after a conflict
PAUSE_MAX = 0.1


class ReplayPolicy:
    """Saves batches for one tracker, replaying them after conflicts, and counts what it did."""

    def __init__(self, max_retries: int):
        self.max_retries = max_retries
        self.conflicts_retried = 0  # version conflicts met and replayed, for metrics
        self.conflicts_given_up = 0  # batches refused with ConcurrencyError
        self._counter_lock = threading.Lock()

    def commit(self, tracker: "WorkflowTracker", batch: "Batch") -> "Batch":
        """Save the batch, replaying it on fresh state after a conflict; the batch that was saved.

        Replays are optimistic, after growing random pauses, but the last one
        (the TRACKER_MAX_RETRIES-th) holds the event store's write lock from its
        reads to its append: a writer whose cache stays fresh can otherwise win
        every race on a run, and its rivals would run out of attempts.
        """
        for replay in range(self.max_retries + 1):
            if replay:
                self._count("conflicts_retried")
                pause_before_replay(replay)
                if replay == self.max_retries:
                    return self._replay_exclusively(tracker, batch)
                batch = _replayed(tracker, batch)
            try:
                tracker.save_batch(batch)
                return batch
            except IntegrityError:
                pass  # a version (or an id) was taken meanwhile: nothing of the batch was stored
        # Only reached without retries: a replay now could only fail differently, and would not be saved.
        self._give_up()

    def _replay_exclusively(self, tracker: "WorkflowTracker", batch: "Batch") -> "Batch":
        try:
            with tracker.recorder.exclusive():
                batch = _replayed(tracker, batch)
                tracker.save_batch(batch)
                return batch
        except IntegrityError:  # no other writer could append meanwhile: not expected
            self._give_up()

    def _give_up(self) -> NoReturn:
        self._count("conflicts_given_up")
        raise ConcurrencyError(
            f"gave up after {self.max_retries + 1} attempts: concurrent "
            "writers kept changing the same runs or tasks; nothing of this batch was recorded"
        )

    def _count(self, counter: str) -> None:
        # Web workers share one tracker between threads, and += is no atomic step.
        with self._counter_lock:
            setattr(self, counter, getattr(self, counter) + 1)


def _replayed(tracker: "WorkflowTracker", batch: "Batch") -> "Batch":
    batch = batch.replay()
    # After the replay: a resend racing its original now skips what the original
    # created; an id still created here and already stored is someone else's.
    _refuse_taken_ids(tracker, batch.caller_given_ids())
    return batch


def _refuse_taken_ids(tracker: "WorkflowTracker", created_ids: list) -> None:
    # Only ids a caller gave can be taken: a fresh uuid4 is this batch's alone.
    for aggregate_id in created_ids:
        if tracker.recorder.select_events(aggregate_id, limit=1):
            raise DuplicateIdError(f"the id {aggregate_id} is already taken; nothing of this batch was recorded")


def pause_before_replay(attempt: int) -> None:
    """Sleep before replay `attempt`: 2-4 ms, then 4-8, 8-16 ... up to PAUSE_MAX s.

    Writers that conflicted on one run would otherwise replay in lockstep and
    conflict again, while the writer whose cache is fresh goes on committing;
    growing pauses let it finish, random ones keep the others apart.
    """
    longest = min(PAUSE_MAX, PAUSE_FIRST * 2 ** (attempt - 1))
    time.sleep(random.uniform(longest / 2, longest))
