"""POST /api/v1/events: auth, idempotent resend, all or nothing, 400 and 413."""

from uuid import uuid4

import pytest

from appliance.projection import Projector
from tests.support.web_support import TOKEN, bearer, events_of_a_run, make_app


def test_ingest_applies_a_batch_and_a_resend_changes_nothing(client, tracker):
    run_id = str(uuid4())
    body = {"events": events_of_a_run(run_id)}
    first = client.post("/api/v1/events", json=body, headers=bearer())
    assert first.status_code == 200 and first.json == {"applied": 2, "duplicates": 0}
    again = client.post("/api/v1/events", json=body, headers=bearer())
    assert again.json == {"applied": 0, "duplicates": 2}
    Projector(tracker).catch_up()
    [run] = client.get("/api/v1/runs").json["runs"]
    assert (run["id"], run["status"], run["user"]) == (run_id, "running", "dora")


def test_ingest_is_all_or_nothing_and_names_bad_events(client, tracker):
    events = events_of_a_run(str(uuid4())) + [{"id": "x", "type": "nope"}]
    response = client.post("/api/v1/events", json={"events": events}, headers=bearer())
    assert response.status_code == 400
    assert [p["index"] for p in response.json["problems"]] == [2]
    assert tracker.recorder.max_notification_id() is None


@pytest.mark.parametrize("headers, status", [({}, 401), (bearer("wrong"), 401), ({"Authorization": TOKEN}, 401)])
def test_ingest_requires_the_token(client, headers, status):
    response = client.post("/api/v1/events", json={"events": []}, headers=headers)
    assert response.status_code == status


def test_ingest_without_a_configured_token_says_how_to_enable_it(database_url):
    client = make_app(database_url, ingest_token=None).test_client()
    response = client.post("/api/v1/events", json={"events": []}, headers=bearer())
    assert response.status_code == 403 and "APPLIANCE_INGEST_TOKEN" in response.json["error"]


def test_too_large_batches_get_413(database_url):
    client = make_app(database_url, ingest_max_events=1, ingest_max_bytes=2000).test_client()
    two = client.post("/api/v1/events", json={"events": events_of_a_run(str(uuid4()))}, headers=bearer())
    assert two.status_code == 413 and "limit is 1" in two.json["error"]
    huge = client.post("/api/v1/events", data=b'{"events": ["' + b"x" * 5000 + b'"]}', headers=bearer(),
                       content_type="application/json")
    assert huge.status_code == 413


def test_malformed_json_gets_400(client):
    response = client.post("/api/v1/events", data=b"{nope", headers=bearer(), content_type="application/json")
    assert response.status_code == 400 and "not JSON" in response.json["error"]




def test_a_fresh_worker_makes_one_tracker_however_many_threads_ask(database_url):
    import threading

    from appliance.web.db import tracker as app_tracker

    app = make_app(database_url, ingest_token=TOKEN)
    start, made, errors = threading.Barrier(8), [], []

    def first_request():
        with app.app_context():
            start.wait()
            try:
                made.append(app_tracker())
            except Exception as error:  # the race this guards against raised InvalidRequestError
                errors.append(error)

    threads = [threading.Thread(target=first_request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == [] and len({id(t) for t in made}) == 1
    made[0].close()


def test_a_new_run_under_a_taken_id_gets_409_and_stores_nothing(client, tracker):
    run_id = str(uuid4())
    first = client.post("/api/v1/events", json={"events": events_of_a_run(run_id)}, headers=bearer())
    assert first.status_code == 200
    stored = tracker.recorder.max_notification_id()
    again = events_of_a_run(run_id)  # the same run id under new event ids
    response = client.post("/api/v1/events", json={"events": again}, headers=bearer())
    assert response.status_code == 409
    assert run_id in response.json["error"] and "already taken" in response.json["error"]
    assert tracker.recorder.max_notification_id() == stored
