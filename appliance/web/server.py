"""`appliance web`: the Flask app under gunicorn, configured from the settings."""

from __future__ import annotations

import os
import runpy
import shutil
import socket
import sys
import tempfile

from gunicorn.app.base import BaseApplication

from appliance.config import Settings
from appliance.files import app_file

CONFIG_FILE = app_file("conf") / "gunicorn.conf.py"


class WebServer(BaseApplication):
    """gunicorn with conf/gunicorn.conf.py, and bind address, port and workers from the settings."""

    def __init__(self, settings: Settings, metrics_dir: str | None = None):
        self.settings = settings
        self.metrics_dir = metrics_dir
        super().__init__()

    def load_config(self) -> None:
        for key, value in runpy.run_path(str(CONFIG_FILE)).items():
            if key in self.cfg.settings:
                self.cfg.set(key, value)
        web = self.settings.web
        self.cfg.set("bind", [f"{web.bind}:{web.port}"])
        self.cfg.set("workers", web.workers)

    def load(self):
        from appliance.web import create_app
        from appliance.web.asgi import WsgiOnAsgi

        app = create_app(self.settings, metrics_dir=self.metrics_dir)
        return WsgiOnAsgi(app, max_body=self.settings.web.ingest_max_bytes)


def port_in_use(host: str, port: int) -> bool:
    """Whether a live listener holds the address (SO_REUSEADDR: a closed socket's TIME_WAIT does not count)."""
    family, kind, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    with socket.socket(family, kind) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError:
            return True
    return False


def run_web(settings: Settings) -> int:
    # A port held by another process fails at once: gunicorn would retry it for
    # 5 s after its start-up, which on a loaded machine outlasts supervisord's
    # startsecs, so a web that can never bind looked RUNNING and was restarted for ever.
    if port_in_use(settings.web.bind, settings.web.port):
        print(f"web: {settings.web.bind}:{settings.web.port} is in use by another process", file=sys.stderr, flush=True)
        return 1
    metrics_dir = tempfile.mkdtemp(prefix="appliance-metrics-")
    # prometheus-client switches to multiprocess mode when this variable is set
    # as it is first imported: here, before gunicorn forks the workers that import it.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    master = os.getpid()
    try:
        WebServer(settings, metrics_dir).run()
    finally:
        # Workers leave through this frame too (gunicorn forks inside run()); only the master cleans up.
        if os.getpid() == master:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0
