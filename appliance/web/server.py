"""`appliance web`: the Flask app under gunicorn, configured from the settings."""

from __future__ import annotations

import runpy
from pathlib import Path

from gunicorn.app.base import BaseApplication

from appliance.config import Settings

CONFIG_FILE = Path(__file__).resolve().parent.parent.parent / "conf" / "gunicorn.conf.py"


class WebServer(BaseApplication):
    def __init__(self, settings: Settings):
        self.settings = settings
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

        return create_app(self.settings)


def run_web(settings: Settings) -> int:
    WebServer(settings).run()
    return 0
