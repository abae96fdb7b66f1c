"""A supervised program ends when its supervisor dies, instead of living on as an orphan.

supervisord starts each program in a process group of its own, so natively a
SIGKILL of supervisord (or of `scripts/run` before it) reaches none of them:
web, monitor and projector would keep the port and the projector's role, and
the next start would fail to bind and find its /readyz answered by the orphan.
(In a container the PID namespace ends them; natively nothing does.)

Linux's PR_SET_PDEATHSIG has the kernel send this process SIGTERM when its
parent dies; SIGTERM is each program's ordinary, graceful stop.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import sys

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def exit_with_parent(signum: int = signal.SIGTERM) -> bool:
    """Ask the kernel for `signum` when the parent dies; True when it will come.

    A parent already gone before the request (a race at start) sends the
    signal here at once, since the kernel would never send it.
    """
    if not sys.platform.startswith("linux"):
        return False
    parent = os.getppid()
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) != 0:
        log.warning("cannot ask to be stopped with the parent: %s", os.strerror(ctypes.get_errno()))
        return False
    if os.getppid() != parent:
        os.kill(os.getpid(), signum)
    return True
