"""The web worker's loop stops taking signals before it closes the pipe they are written to."""

from __future__ import annotations

import asyncio
import signal

from appliance.web.worker import close_without_signal_wakeups


def wakeup_fd_as_the_pipe_closes(close) -> int:
    """The fd signals are written to at the moment `close(loop)` closes the loop's self-pipe."""
    loop = asyncio.new_event_loop()
    loop.add_signal_handler(signal.SIGUSR1, lambda: None)
    close_pipe = loop._close_self_pipe
    seen = []

    def recording_close_pipe():
        wakeup_fd = signal.set_wakeup_fd(-1)
        signal.set_wakeup_fd(wakeup_fd)
        seen.append(wakeup_fd)
        close_pipe()

    loop._close_self_pipe = recording_close_pipe
    close(loop)
    assert loop.is_closed()
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL  # its handlers are removed as before
    return seen[0]


def test_signals_stop_writing_to_the_loop_before_its_pipe_closes():
    assert wakeup_fd_as_the_pipe_closes(close_without_signal_wakeups) == -1


def test_asyncios_own_close_writes_signals_to_a_closing_pipe():
    """Why the worker needs it: the assertion above fails for the unchanged close()."""
    assert wakeup_fd_as_the_pipe_closes(lambda loop: loop.close()) != -1
