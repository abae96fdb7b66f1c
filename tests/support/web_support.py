"""What the web tests share: an app on the test database, seeded runs, ingest helpers."""

from uuid import uuid4

from appliance.config import Settings, WebSettings, parse_database_url
from appliance.web import create_app

TOKEN = "ingest-token-for-tests"
XSS = "<script>alert(1)</script>"


def make_app(database_url, **web):
    settings = Settings(database_url=parse_database_url(database_url),
                        web=WebSettings(**{"ingest_token": TOKEN, **web}))
    return create_app(settings)


def bearer(token=TOKEN):
    return {"Authorization": f"Bearer {token}"}


def events_of_a_run(run_id):
    return [
        {"id": str(uuid4()), "type": "run_started", "run_id": run_id, "name": "ingested", "user": "dora"},
        {"id": str(uuid4()), "type": "log", "run_id": run_id, "message": "hello"},
    ]
