"""`appliance web`: the Flask app under gunicorn, configured from the settings."""

from __future__ import annotations

from pathlib import Path

from gunicorn.app.base import BaseApplication

from appliance.config import Settings

CONFIG_FILE = Path(__file__).resolve().parent.parent.parent / "conf" / "gunicorn.conf.py"


class WebServer(BaseApplication):
    def __init__(self, settings: Settings):
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        if CONFIG_FILE.exists():
            self.load_config_from_file(str(CONFIG_FILE))
        web = self.settings.web
        self.cfg.set("bind", [f"{web.bind}:{web.port}"])
        self.cfg.set("workers", web.workers)

    def load(self):
        from appliance.web import create_app

        return create_app(self.settings)


def run_web(settings: Settings) -> int:
    WebServer(settings).run()
    return 0
