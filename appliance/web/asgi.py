"""The Flask (WSGI) app under gunicorn's asyncio worker: a request reaches a thread only once it is whole.

Under the threaded worker a connection took a thread when it was accepted and
held it while the client sent its headers, however slowly: eight clients
sending a byte now and then (2 workers x 4 threads) blocked health checks,
pages and ingest alike. gunicorn's asyncio ("asgi") worker reads every
connection's request line, headers and body in its event loop, where a waiting
client costs a few kilobytes and no thread. `WsgiOnAsgi` hands each complete
request to one of APP_THREADS threads that run the Flask app (whose database
calls block), and the loop sends the answer back, so a client slow to read
holds no thread either.

A body is read up to the ingest limit plus one byte, no further: the app then
answers 413 as it would have (it judges Content-Length, or the length read).
"""

from __future__ import annotations

import asyncio
import io
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

APP_THREADS = 4  # per web worker process: requests the Flask app runs at once


class WsgiOnAsgi:
    """An ASGI application that runs a WSGI application in a pool of threads."""

    def __init__(self, wsgi_app: Callable, *, max_body: int, threads: int = APP_THREADS):
        self.wsgi_app = wsgi_app
        self.max_body = max_body
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="web-request")

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            body = await self._read_body(receive)
            environ = wsgi_environ(scope, body)
            loop = asyncio.get_running_loop()
            status, headers, chunks = await loop.run_in_executor(self.executor, self._respond, environ)
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": b"".join(chunks)})

    async def _lifespan(self, receive: Callable, send: Callable) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.executor.shutdown(wait=True)  # requests in hand finish
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _read_body(self, receive: Callable) -> bytes:
        parts, size = [], 0
        while size <= self.max_body:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                break
            chunk = message.get("body", b"")
            parts.append(chunk)
            size += len(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(parts)[: self.max_body + 1]

    def _respond(self, environ: dict) -> tuple[int, list[tuple[bytes, bytes]], list[bytes]]:
        """Run the WSGI app in this (pool) thread: (status, headers, body chunks)."""
        started: dict[str, Any] = {}
        chunks: list[bytes] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info=None):
            if exc_info is not None and started:
                raise exc_info[1].with_traceback(exc_info[2])
            started["status"], started["headers"] = status, headers
            return chunks.append

        result = self.wsgi_app(environ, start_response)
        try:
            chunks.extend(result)
        finally:
            if hasattr(result, "close"):
                result.close()  # Flask's teardown (the deadline, the pooled connection) runs here
        headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in started["headers"]]
        return int(started["status"].split(" ", 1)[0]), headers, chunks


def wsgi_environ(scope: dict, body: bytes) -> dict[str, Any]:
    """PEP 3333's environ for an ASGI HTTP scope and its (read) body."""
    server_host, server_port = scope.get("server") or ("localhost", 80)
    client = scope.get("client") or ("", 0)
    environ = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": scope.get("root_path", "").encode("utf-8").decode("latin-1"),
        # WSGI carries the decoded path's bytes as latin-1 text; ASGI gives it as UTF-8 text.
        "PATH_INFO": scope["path"].encode("utf-8").decode("latin-1"),
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_NAME": str(server_host),
        "SERVER_PORT": str(server_port),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "REMOTE_ADDR": client[0],
        "REMOTE_PORT": str(client[1]),
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": io.BytesIO(body),
        "wsgi.input_terminated": True,  # read whole already, however the client framed it
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for raw_name, raw_value in scope.get("headers", []):
        name, value = raw_name.decode("latin-1").upper().replace("-", "_"), raw_value.decode("latin-1")
        if name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            environ[name] = value  # the length the client announced: beyond the limit, the app says 413
            continue
        if name == "TRANSFER_ENCODING":
            continue  # the chunks are undone: the app reads the body as it is

        key = f"HTTP_{name}"
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ
