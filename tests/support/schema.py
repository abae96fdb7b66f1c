"""What a fresh test database holds: everything `appliance init` creates."""

from __future__ import annotations

from appliance.config import Settings, parse_database_url


def prepare_schema(url: str) -> None:
    from appliance.schema import init

    init(Settings(database_url=parse_database_url(url)), announce=lambda line: None)
