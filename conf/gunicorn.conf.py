# gunicorn settings of `appliance web`. Bind address, port and workers come
# from the appliance's settings (BACKEND_PORT, APPLIANCE_BIND, WEB_WORKERS),
# passed in by appliance/web/server.py; this file holds what does not vary.

from gunicorn.glogging import Logger


class WebLogger(Logger):
    """gunicorn's own lines look like every other line of the appliance:
    `<time> web LEVEL gunicorn: ...`, so docker logs says which program wrote them."""

    error_fmt = "%(asctime)s web %(levelname)s gunicorn: %(message)s"
    datefmt = None  # logging's default, as the appliance's other lines

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
worker_class = "gthread"
threads = 4
# Stop timeouts must nest (docs/deploy.md): this 2 s < web's stopwaitsecs in
# conf/supervisord.conf (3 s) < Docker's 10 s, so no worker is killed mid-request.
graceful_timeout = 2
timeout = 30
keepalive = 5
accesslog = "-"
errorlog = "-"
access_log_format = 'web %(h)s "%(r)s" %(s)s %(b)s %(L)ss'
# Workers import the app after the fork: each opens its own database pool.
preload_app = False
# No control socket: supervisorctl manages the web; gunicorn's default path
# ($HOME/.gunicorn) is not writable in the image and shared by every instance natively.
control_socket_disable = True
