# gunicorn settings of `appliance web`. Bind address, port and workers come
# from the appliance's settings (BACKEND_PORT, APPLIANCE_BIND, WEB_WORKERS),
# passed in by appliance/web/server.py; this file holds what does not vary.

from gunicorn.glogging import Logger

from appliance import logs


class WebLogger(Logger):
    """gunicorn's own lines and its access lines look like every other line of the
    appliance (appliance/logs.py, LOG_FORMAT): `<time> web INFO access: ...`."""

    def setup(self, cfg):
        super().setup(cfg)
        for handler in self.error_log.handlers:
            logs.use_format(handler, logs.current_format(), "web", "gunicorn")
        for handler in self.access_log.handlers:
            logs.use_format(handler, logs.current_format(), "web", "access")

    def atoms(self, resp, req, environ, request_time):
        """The request line (%(r)s) without its query string, which shows as "?...":
        a token or password sent there (and refused) must not reach the log."""
        atoms = super().atoms(resp, req, environ, request_time)
        path, query_mark, _ = environ.get("RAW_URI", "").partition("?")
        atoms["r"] = f"{environ['REQUEST_METHOD']} {path}{'?...' if query_mark else ''} {environ['SERVER_PROTOCOL']}"
        for key in ("q", "{query_string}e", "{raw_uri}e", "{request_uri}e"):
            atoms.pop(key, None)
        return atoms


logger_class = WebLogger
# The asyncio worker reads requests in its event loop, so clients that send slowly
# hold no thread; appliance/web/asgi.py runs each whole request in one of a few threads.
worker_class = "appliance.web.worker.PromptStopWorker"  # "asgi", stopping at once (its docstring)
worker_connections = 1000
# Stop timeouts must nest (docs/deploy.md): this 2 s < web's stopwaitsecs in
# conf/supervisord.conf (3 s) < Docker's 10 s, so no worker is killed mid-request.
graceful_timeout = 2
timeout = 30
keepalive = 5
accesslog = "-"
errorlog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(L)ss'
# Workers import the app after the fork: each opens its own database pool.
preload_app = False
# No control socket: supervisorctl manages the web; gunicorn's default path
# ($HOME/.gunicorn) is not writable in the image and shared by every instance natively.
control_socket_disable = True


def worker_exit(server, worker):
    """A worker that has finished its requests (gunicorn waited for them) leaves at once:
    the interpreter's exit would join every thread still parked in a pool (database,
    request threads), which under load outlasted graceful_timeout, and gunicorn then
    killed the worker with SIGKILL."""
    import os
    import sys

    leaving = sys.exc_info()[1]  # gunicorn calls this while the worker's SystemExit is in flight
    code = leaving.code if isinstance(leaving, SystemExit) and isinstance(leaving.code, int) else 0
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # the same code: gunicorn stops on a worker that failed to boot (3)
