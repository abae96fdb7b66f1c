"""supervisord in this very process, then exit 1 if a program could not be started.

entrypoint.sh `exec`s this as its last step, so supervisord is the container's
main process and every signal (TERM, INT, HUP, USR2) reaches it directly. But
supervisord exits 0 whenever it shuts down, also when the FATAL listener
(appliance.supervisor_listener) stopped it, and a restart policy of
`on-failure` would then never restart the container. The listener leaves a
marker file naming the program; finding it after supervisord returns, this
exits 1.

Usage: python -m appliance.supervise MARKER_FILE -c conf/supervisord.conf
"""

from __future__ import annotations

import sys
from pathlib import Path

from supervisor import supervisord

EXIT_FATAL = 1


def supervise(marker: Path, supervisord_args: list[str]) -> int:
    marker.unlink(missing_ok=True)  # a marker left by an earlier run of this container
    supervisord.main(args=supervisord_args)
    if marker.is_file() and marker.stat().st_size:
        program = marker.read_text().strip()
        print(f"entrypoint: program '{program}' could not be started; exiting {EXIT_FATAL}",
              file=sys.stderr, flush=True)
        return EXIT_FATAL
    print("entrypoint: supervisord stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(supervise(Path(sys.argv[1]), sys.argv[2:]))
