"""The status UI, the JSON API and the ingest endpoint: a Flask application.

    gunicorn 'appliance.web:create_app()'      (`appliance web` does this with the settings)

The factory lives in appliance.web.app and is imported when called:
`appliance web`'s gunicorn master only forks the workers, and so does not
load Flask and the rest of the app (about 14 MiB of its memory).
"""


def create_app(*args, **kwargs):
    """appliance.web.app.create_app, imported on first call."""
    from appliance.web.app import create_app as factory

    return factory(*args, **kwargs)
