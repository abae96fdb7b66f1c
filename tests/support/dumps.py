"""Databases made by an earlier version of the appliance, kept as pg_dump files in tests/fixtures.

tests/fixtures/README.md says how each was made. They are restored with the
server's own psql (`pg_config --bindir`), minus pg_dump's \\restrict guard
lines, which older psql versions do not know.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from appliance.localpg import server_bindir

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def restore(url: str, name: str) -> None:
    """Load tests/fixtures/NAME.sql into the (empty) database at `url`."""
    lines = (FIXTURES / f"{name}.sql").read_text().splitlines(keepends=True)
    script = "".join(line for line in lines if not line.startswith(("\\restrict", "\\unrestrict")))
    completed = subprocess.run([str(server_bindir() / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url],
                               input=script, capture_output=True, text=True)
    if completed.returncode != 0:
        raise AssertionError(f"restoring {name} failed: {completed.stderr[-2000:]}")
