"""What a fresh test database holds: everything `appliance init` would create."""

from __future__ import annotations

from sqlalchemy import create_engine


def prepare_schema(url: str) -> None:
    from appliance import WorkflowTracker
    from appliance.views import Base

    # The event store's tables belong to the library; the tracker creates them.
    WorkflowTracker(database_url=url).close()
    engine = create_engine(url)
    try:
        Base.metadata.create_all(engine)
    finally:
        engine.dispose()
