"""The folder of supervisord's socket and pid file (APPLIANCE_RUN_DIR), made before the programs start.

Only its owner may enter it (0700): the socket in it controls every program.
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path

EXIT_CONFIG = 2


def prepare_run_dir(run_dir: Path | None) -> int:
    """0 when the folder exists (made 0700 if new) and can be written; else a line and exit 2."""
    if run_dir is None:
        return 0
    try:
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        run_dir.mkdir(mode=0o700)
        run_dir.chmod(0o700)  # mkdir's mode is cut by the umask
    except FileExistsError:
        pass
    except OSError:
        return _cannot(run_dir)
    if not (run_dir.is_dir() and os.access(run_dir, os.W_OK)):
        return _cannot(run_dir)
    return 0


def _cannot(run_dir: Path) -> int:
    try:
        user = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        user = str(os.getuid())
    print(f"APPLIANCE_RUN_DIR={run_dir} cannot be created or written by {user}")
    return EXIT_CONFIG
