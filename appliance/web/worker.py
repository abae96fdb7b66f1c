"""gunicorn's asyncio worker, made to stop as soon as it is told to.

Told SIGTERM, gunicorn's asyncio worker notices it at its next 1 s heartbeat,
then waits up to graceful_timeout for every open connection to end: those
serving a request, but also those waiting for one (a browser's idle keep-alive
or preconnected socket, a client still sending its headers). With one such
connection open, the worker outlived gunicorn's 2 s and was killed with
SIGKILL, and under load the whole `web` program outlived supervisord's 3 s.

This worker starts its stop at once and closes the connections that wait for
a request (no answer is lost: a client retries a request it never sent); the
requests in hand still finish, as gunicorn's own stop lets them. A connection
becomes idle later when it was accepted just before the signal or its answer
was still being sent, so the closing goes on until no connection is left.
"""

from __future__ import annotations

import signal
import weakref

from gunicorn.workers.gasgi import ASGIWorker


IDLE_SWEEP_INTERVAL = 0.05  # seconds between two closings of idle connections, once stopping


def close_without_signal_wakeups(loop) -> None:
    """Close the loop without "Exception ignored when trying to write to the signal wakeup fd".

    CPython's close() closes the loop's self-pipe first and only then stops
    signals writing to it; a signal in between (Ctrl-C reaches every process
    of the group, then supervisord's SIGTERM) wrote a traceback to the log.
    """
    signal.set_wakeup_fd(-1)
    type(loop).close(loop)


class PromptStopWorker(ASGIWorker):
    """The asyncio worker (conf/gunicorn.conf.py) whose SIGTERM closes idle connections at once."""

    def run(self):
        self.connections: weakref.WeakSet = weakref.WeakSet()
        self._track_connections()
        self.loop.close = lambda: close_without_signal_wakeups(self.loop)
        self._serving = self.loop.create_task(self._serve())
        try:
            self.loop.run_until_complete(self._serving)
        except Exception as error:
            self.log.exception("Worker exception: %s", error)
        finally:
            self._cleanup()

    def handle_exit_signal(self):
        if not self.alive:
            return  # the stop is under way
        super().handle_exit_signal()
        for server in self.servers:
            server.close()  # no new connections
        self._close_idle_connections()
        if self.servers:  # serving: wake the heartbeat's 1 s sleep, so the stop starts now
            self.loop.call_soon(self._wake)

    def _close_idle_connections(self) -> None:
        for connection in list(self.connections):
            if connection._awaiting_request and not connection._finishing_calls and not connection._closed:
                connection._keepalive_timeout()  # closes it as an idle keep-alive ends
        if self.nr_conns > 0:
            self.loop.call_later(IDLE_SWEEP_INTERVAL, self._close_idle_connections)

    def _wake(self) -> None:
        if not self._serving.done():
            self._serving.cancel()  # _serve catches it in its heartbeat loop, then shuts down

    def _track_connections(self) -> None:
        """Every connection's protocol, as the loop makes it (gunicorn keeps only a count)."""
        create_server = self.loop.create_server

        async def create_tracked_server(protocol_factory, *args, **kwargs):
            def tracked_protocol():
                protocol = protocol_factory()
                self.connections.add(protocol)
                return protocol
            return await create_server(tracked_protocol, *args, **kwargs)

        self.loop.create_server = create_tracked_server
