"""What a fresh test database holds: everything `appliance init` would create."""

from __future__ import annotations

from appliance.config import Settings, parse_database_url


def prepare_schema(url: str) -> None:
    from appliance import WorkflowTracker
    from appliance.migrator import migrate

    # The event store's tables belong to the library; the tracker creates them.
    WorkflowTracker(database_url=url).close()
    migrate(Settings(database_url=parse_database_url(url)), announce=lambda line: None)
