"""Bad input at the ingest endpoint and hostile text in every field a workflow controls."""

import json
from uuid import uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markupsafe import escape

from appliance.config import Settings, WebSettings, parse_database_url
from appliance.ingest import EVENT_TYPES
from appliance.projection import Projector
from appliance.web import create_app

TOKEN = "fuzz-token"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}
XSS_PAYLOADS = [
    "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "\"><svg onload=alert(1)>",
    "javascript:alert(1)", "'; DROP TABLE workflow_runs; --", "{{ 7*7 }}", "</pre><script>x</script>",
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
field_names = st.sampled_from(sorted({name for spec in EVENT_TYPES.values() for name in spec.fields}) + ["colour"])
odd_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300) | st.just("a\x00b") | \
    st.just("x" * 2000) | st.just("\u202e\ufeff\U0001f600")
events = st.fixed_dictionaries(
    {"id": st.one_of(st.uuids().map(str), odd_text, json_values),
     "type": st.one_of(st.sampled_from(sorted(EVENT_TYPES)), odd_text)},
    optional={"run_id": st.one_of(st.uuids().map(str), odd_text), "task_id": st.uuids().map(str)},
).flatmap(lambda event: st.dictionaries(field_names, st.one_of(odd_text, json_values), max_size=4)
          .map(lambda extra: {**extra, **event}))
bodies = st.one_of(
    st.binary(max_size=200),
    st.builds(lambda v: json.dumps(v).encode(), json_values),
    st.builds(lambda es: json.dumps({"events": es}).encode(), st.lists(events, max_size=6)),
)


@pytest.fixture
def app_client(database_url):
    app = create_app(Settings(database_url=parse_database_url(database_url), web=WebSettings(ingest_token=TOKEN)))
    return app.test_client()


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=bodies)
def test_fuzzed_ingest_never_fails_and_a_refused_batch_stores_nothing(app_client, tracker, body):
    before = tracker.recorder.max_notification_id()
    response = app_client.post("/api/v1/events", data=body, headers=HEADERS, content_type="application/json")
    # 409: hypothesis repeats UUIDs across examples, and a new run under a stored id is refused.
    assert response.status_code in (200, 400, 409, 413), response.get_data(as_text=True)
    payload = response.get_json()
    assert "Traceback" not in response.get_data(as_text=True)
    if response.status_code != 200:
        assert payload["error"]
        assert tracker.recorder.max_notification_id() == before


def test_events_out_of_order_are_refused_whole(app_client, tracker):
    run_id, task_id = str(uuid4()), str(uuid4())
    out_of_order = [
        {"id": str(uuid4()), "type": "task_started", "task_id": task_id},
        {"id": str(uuid4()), "type": "run_started", "run_id": run_id, "name": "late"},
        {"id": str(uuid4()), "type": "task_created", "task_id": task_id, "run_id": run_id, "name": "t"},
    ]
    response = app_client.post("/api/v1/events", json={"events": out_of_order}, headers=HEADERS)
    assert response.status_code == 400 and response.json["problems"][0]["index"] == 0
    assert tracker.recorder.max_notification_id() is None


def test_hostile_text_in_every_workflow_field_is_shown_escaped(app_client, tracker):
    for payload in XSS_PAYLOADS:
        run = tracker.initiate_workflow(payload, payload, payload, payload, source=payload)
        tracker.start_workflow(run)
        task = tracker.add_task_to_workflow(run, payload, payload, {payload: payload}, {payload: payload})
        tracker.start_task(task)
        tracker.add_job_id(task, payload)
        tracker.update_task_status(task, payload)
        tracker.update_task_progress(task, payload)
        tracker.fail_task(task, payload)
        tracker.record_log(run, payload, level="ERROR", task_id=task)
        tracker.fail_workflow(run, payload)
        Projector(tracker).catch_up()
        api = app_client.get(f"/api/v1/runs/{run}")  # JSON carries the text as it is, never as HTML
        assert api.mimetype == "application/json" and api.headers["X-Content-Type-Options"] == "nosniff"
        # (page, its arguments, whether it shows the payload: the change feed shows keys, the system page none)
        pages = [("/", {}, True), (f"/runs/{run}", {}, True), (f"/runs/{run}/logs", {}, True),
                 ("/jobs", {"user": payload}, True), ("/jobs", {"job_id": payload}, True),
                 ("/changes", {}, False), ("/system", {}, False)]
        for page, arguments, shown in pages:
            response = app_client.get(page, query_string=arguments)
            html = response.get_data(as_text=True)
            assert response.status_code == 200, (page, payload, response.status_code)
            if any(mark in payload for mark in '<>"'):
                assert payload not in html, page  # it appears only escaped
                assert not shown or escape(payload) in html, page  # ... and it does appear
