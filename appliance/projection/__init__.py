"""The read side: events from the tracker's log projected into the view tables.

- `rules`: what each event does to the view rows (plain Python);
- `store`: the database side: position, lock, one batch in one transaction;
- `projector`: the loop that follows the log (`appliance projector`);
- `reproject`: rebuild every view from the log (`appliance reproject`).
"""

from appliance.projection.projector import Projector, ProjectorBusy
from appliance.projection.reproject import Reprojection, reproject

__all__ = ["Projector", "ProjectorBusy", "Reprojection", "reproject"]
