"""`appliance status` as an operator runs it, where no supervisord runs."""

from __future__ import annotations

import os
import subprocess
import sys


def appliance_status(database_url, *args):
    """`appliance status` where no supervisord runs: --database-only unless a test asks otherwise."""
    return subprocess.run([sys.executable, "-m", "appliance.cli", "status", *(args or ["--database-only"])],
                          env={**os.environ, "DATABASE_URL": database_url, "APPLIANCE_RUN_DIR": "/nonexistent"},
                          capture_output=True, text=True, timeout=60)
