"""`NoOpWorkflowTracker`: what BIOMERO uses when tracking is off (track_workflows=False).

Every method call returns None and records nothing, so code written for
BIOMERO, which switches between the two, runs against the appliance's
package too.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

log = logging.getLogger(__name__)


class NoOpWorkflowTracker:
    """Any method, any arguments: nothing happens, None is returned."""

    def __getattr__(self, name: str) -> Callable[..., None]:
        if name.startswith("__"):
            raise AttributeError(name)  # copy, pickle and the like must not take it for a method

        def no_op(*args: Any, **kwargs: Any) -> None:
            log.debug("[no-op] %s called with %d arguments: tracking is off", name, len(args) + len(kwargs))

        return no_op
