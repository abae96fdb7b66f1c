"""The status UI, the JSON API and the ingest endpoint: a Flask application factory.

    gunicorn 'appliance.web:create_app()'      (`appliance web` does this with the settings)

The factory and what its views share live in appliance.web.app, loaded on
first use: `appliance web`'s gunicorn master only forks the workers, and so
does not load Flask and the rest of the app (about 14 MiB of its memory).
"""

from importlib import import_module


def __getattr__(name: str):
    app = import_module("appliance.web.app")
    try:
        return getattr(app, name)
    except AttributeError:
        raise AttributeError(f"module 'appliance.web' has no attribute {name!r}") from None
