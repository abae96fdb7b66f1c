"""What the `appliance` command loads before it knows which command it runs.

Every process of a start (the entrypoint's steps, web's gunicorn master,
monitor, projector) builds the whole parser first, so a heavy import there
is paid by each of them: the quarantine command's module once cost every
process 0.3-0.4 s of start-up (projection, eventsourcing, SQLAlchemy's ORM).
"""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("appliance.projection", "appliance.tracker", "appliance.quarantine_cli", "appliance.web.app",
         "eventsourcing", "sqlalchemy.orm", "alembic", "flask", "gunicorn")


def test_building_the_parser_loads_no_command_s_modules():
    script = ("import sys, appliance.cli; appliance.cli.build_parser(); "
              "print('\\n'.join(sorted(sys.modules)))")
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split()
    assert [name for name in loaded if name.startswith(HEAVY)] == []
