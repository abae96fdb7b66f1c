"""Reading the appliance's text log lines (appliance/logs.py) in tests."""

from __future__ import annotations


def message_of(line: str) -> str:
    """What a program wrote, without the prefix every line gets: date, time, program, level."""
    return line.split(" ", 4)[4]


def messages(output: str) -> list[str]:
    return [message_of(line) for line in output.splitlines() if line.count(" ") >= 4]
