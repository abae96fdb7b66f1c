"""What is accepted projects (issue 17, item 1), property-based, against a real PostgreSQL.

Hypothesis makes events (through the ingest endpoint) and tracker calls over
the whole documented domain and beyond its edges: full Unicode with lone
surrogates and NUL, 2^31, 2^63, 1e308, NaN and Infinity, JSON nested to and
past the limit, times from year 1 to 9999 with any offset. Each is either
refused (400 naming the field; InvalidArgumentError naming the argument) or
accepted, and then, after projection, visible in the views as sent. Never a
500, and never an accepted value the projector cannot write.
"""

import json
import math
import re
from datetime import datetime, timedelta, timezone
from uuid import uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import event as outcome
from hypothesis import strategies as st

from appliance import InvalidArgumentError
from appliance import validation as valid
from appliance.config import Settings, WebSettings, parse_database_url
from appliance.ingest import EVENT_TYPES
from appliance.projection import Projector
from appliance.web import create_app
from tests.support.sql import query

TOKEN = "domain-token"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
EXAMPLES = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


def nested(depth: int, leaf=1):
    for _ in range(depth):
        leaf = [leaf]
    return leaf


# Values over the domain and past its edges.

TEXT_EDGES = st.sampled_from(["", " ", "\x00", "a\x00b", "\ud800", "sample_\udcff.fastq", "x" * 1000, "x" * 1001,
                              "\U0001f600\u202e\ufeff", "<script>", "NaN"])
TEXT = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=30) | TEXT_EDGES
INTEGER_EDGES = st.sampled_from([0, 1, -1, 2**31 - 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1,
                                 10**400])
FLOAT_EDGES = st.sampled_from([0.5, -0.0, 1e308, -1e308, 1.7976931348623157e308, 5e-324, math.inf, -math.inf,
                               math.nan])
NUMBER = st.integers() | INTEGER_EDGES | st.floats() | FLOAT_EDGES
SCALAR = st.none() | st.booleans() | NUMBER | TEXT
JSON = st.recursive(SCALAR, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
                    max_leaves=8) | st.sampled_from([nested(64), nested(65), {"deep": nested(63)}])
OFFSETS = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(lambda m: timedelta(minutes=m))
NOW = datetime.now(timezone.utc)
TIMES = (st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)).map(
    lambda t: t.replace(tzinfo=timezone.utc)) | st.sampled_from([
        datetime(1970, 1, 1, tzinfo=timezone.utc), datetime(1969, 12, 31, 23, 59, 59, tzinfo=timezone.utc),
        NOW - timedelta(days=1), NOW + timedelta(hours=23), NOW + timedelta(days=2),
        datetime(9999, 12, 31, 23, 59, tzinfo=timezone.utc)]))
AWARE_TIMES = st.tuples(TIMES, OFFSETS).map(lambda pair: _with_offset(*pair)).filter(lambda t: t is not None)


def _with_offset(utc: datetime, offset: timedelta) -> datetime | None:
    try:
        return utc.astimezone(timezone(offset))
    except OverflowError:
        return None


ISO_TIMES = AWARE_TIMES.map(datetime.isoformat) | st.sampled_from(
    ["2024-05-01T12:00:00", "yesterday", "2024-05-01T12:00:00+20:00", "0001-01-01T00:00:00+01:00"])

# Inside the domain, edges included: most examples aim here, so acceptance is exercised as much as refusal.
STORABLE_CHARACTERS = st.characters(codec="utf-8", exclude_characters="\x00")
GOOD_NAME = st.text(STORABLE_CHARACTERS, min_size=1, max_size=30).filter(str.strip) | st.sampled_from(
    ["x" * 1000, "\U0001f600\u202e\ufeff", "<script>alert(1)</script>"])
GOOD_INTEGER = st.integers(min_value=-(2**63), max_value=2**63 - 1) | st.sampled_from([2**63 - 1, -(2**63)])
GOOD_FLOAT = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from([1e308, -1e308, 5e-324])
GOOD_JSON = st.recursive(
    st.none() | st.booleans() | GOOD_INTEGER | GOOD_FLOAT | st.text(STORABLE_CHARACTERS, max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(STORABLE_CHARACTERS, max_size=8), inner,
                                                                 max_size=3),
    max_leaves=8) | st.just(nested(63))
GOOD_OBJECT = st.dictionaries(st.text(STORABLE_CHARACTERS, max_size=8), GOOD_JSON, max_size=3)
GOOD_COUNT = st.integers(min_value=0, max_value=2**31 - 1) | st.just(2**31 - 1)
GOOD_TIMES = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2026, 1, 1),
                          timezones=st.just(timezone.utc)) | st.sampled_from(
    [datetime(1970, 1, 1, tzinfo=timezone.utc), NOW + timedelta(hours=23)])
GOOD_AWARE_TIMES = st.tuples(GOOD_TIMES, OFFSETS).map(lambda pair: pair[0].astimezone(timezone(pair[1])))


def domain_values(domain, good: bool):
    """Values for a field of this validation domain: inside it, or anywhere (mostly outside)."""
    good_values, any_values = {
        id(valid.NAME): (GOOD_NAME, TEXT), id(valid.TEXT): (GOOD_NAME, TEXT), id(valid.ANY_TEXT): (GOOD_NAME, TEXT),
        id(valid.OBJECT): (GOOD_OBJECT, JSON), id(valid.ANY_JSON): (GOOD_JSON, JSON),
        id(valid.COUNT): (GOOD_COUNT, NUMBER),
        id(valid.PROGRESS): (GOOD_INTEGER | GOOD_FLOAT | GOOD_NAME, NUMBER | TEXT),
        id(valid.JOB_ID): (GOOD_INTEGER | GOOD_NAME, NUMBER | TEXT),
        id(valid.LEVEL): (st.sampled_from(["info", "WARNING", "Error", "critical", "DEBUG"]),
                          st.sampled_from(["LOUD", "", "INFO\x00"]) | TEXT),
        # The Snakemake details (issue 22): lists of names or paths, counts, figures, rule-graph edges.
        id(valid.NAMES): (st.lists(GOOD_NAME, max_size=3), JSON | st.lists(TEXT, max_size=3)),
        id(valid.PATH): (GOOD_NAME, TEXT),
        id(valid.PATHS): (st.lists(GOOD_NAME, max_size=3), JSON | st.lists(TEXT, max_size=3)),
        id(valid.COUNTS): (st.dictionaries(GOOD_NAME, GOOD_COUNT, max_size=3), JSON),
        id(valid.MEASUREMENTS): (st.dictionaries(GOOD_NAME, st.none() | GOOD_INTEGER | GOOD_FLOAT, max_size=3), JSON),
        id(valid.EDGES): (st.lists(st.lists(GOOD_NAME, min_size=2, max_size=2), max_size=2), JSON),
    }[id(domain)]
    return good_values if good else any_values


# Through ingest.


@pytest.fixture
def web(database_url):
    return create_app(Settings(database_url=parse_database_url(database_url),
                               web=WebSettings(ingest_token=TOKEN))).test_client()


def post(web, events) -> tuple[int, dict]:
    # ensure_ascii: a lone surrogate travels as the escape \udcff, as a Python client's JSON sends it.
    response = web.post("/api/v1/events", data=json.dumps({"events": events}, ensure_ascii=True), headers=HEADERS)
    return response.status_code, response.get_json()


@st.composite
def one_event(draw, run_id: str, task_id: str) -> dict:
    """An event of any type about the example's run and task, its fields inside their domains (most
    examples) or anywhere."""
    good = draw(st.integers(0, 9)) < 7
    event_type = draw(st.sampled_from(sorted(EVENT_TYPES)))
    event = {"id": str(uuid4()), "type": event_type}
    for name, field in EVENT_TYPES[event_type].fields.items():
        if not field.required and draw(st.booleans()):
            continue
        if name == "run_id":
            # A new run for the types that create one, else the example's: a 409 is not what this tests.
            event[name] = str(uuid4()) if event_type in ("run_created", "run_started") else run_id
        elif name == "task_id":
            event[name] = str(uuid4()) if event_type == "task_created" else task_id
        else:
            event[name] = draw(domain_values(field.domain, good))
    if event_type == "run_started" and "name" not in event:
        event["run_id"] = run_id
    if event_type == "run_progress" and good:
        event["done"] = draw(st.integers(0, event["total"]))
    if draw(st.booleans()):
        event["time"] = draw(GOOD_AWARE_TIMES.map(datetime.isoformat) if good else ISO_TIMES)
    return event


@EXAMPLES
@given(data=st.data())
def test_every_ingested_event_is_refused_by_name_or_projected_and_visible(web, tracker, database_url, data):
    run_id, task_id = str(uuid4()), str(uuid4())
    status, _ = post(web, [{"id": str(uuid4()), "type": "run_started", "run_id": run_id, "name": "r"},
                           {"id": str(uuid4()), "type": "task_created", "run_id": run_id, "task_id": task_id,
                            "name": "t"}])
    assert status == 200
    event = data.draw(one_event(run_id, task_id), label="event")

    status, body = post(web, [event])

    assert status in (200, 400), body
    outcome(f"{event['type']} {'accepted' if status == 200 else 'refused'}")  # --hypothesis-show-statistics
    if status == 400:
        [problem] = body["problems"]
        # Names one of the event's fields, or a place inside it: "usage['wall_seconds']: ...".
        assert re.split(r"[:\[]", problem["error"])[0] in event, problem
        return
    project_all(tracker, database_url)
    assert_visible(database_url, event, run_id, task_id)


def test_the_500s_of_yesterday_are_400s_naming_their_problem(web):
    run_id = str(uuid4())
    cases = [
        ({"id": str(uuid4()), "type": {}}, "type: "),
        ({"id": str(uuid4()), "type": []}, "type: "),
        ({"id": str(uuid4()), "type": "run_created", "run_id": run_id, "name": "sample_\udcff"}, "name: "),
        ({"id": str(uuid4()), "type": "run_progress", "run_id": run_id, "done": 2**31, "total": 2**31}, "done: "),
        ({"id": str(uuid4()), "type": "task_progress", "task_id": run_id, "progress": 10**309}, "progress: "),
        ({"id": str(uuid4()), "type": "run_created", "run_id": run_id, "name": "x", "params": nested(65)}, "params: "),
        ({"id": str(uuid4()), "type": "heartbeat", "run_id": run_id, "time": "9999-01-01T00:00:00Z"}, "time: "),
    ]
    for event, named in cases:
        status, body = post(web, [event])
        assert status == 400 and body["problems"][0]["error"].startswith(named), (event, body)
    # What the answer echoes of a client's names is escaped: no lone surrogate or NUL goes back.
    status, body = post(web, [{"id": "\udcff", "type": "log\x00"},
                              {"id": str(uuid4()), "type": "log", "\udcff\x00": 1}])
    answer = json.dumps(body, ensure_ascii=False)
    assert status == 400 and "\x00" not in answer and answer.encode("utf-8")  # no lone surrogate either
    assert [(p["id"], p["type"]) for p in body["problems"]][0] == ("'\\udcff'", "'log\\x00'")
    assert body["problems"][1]["error"] == "unknown field(s) for log: '\\udcff\\x00'"
    deep = b'{"events": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}"
    response = web.post("/api/v1/events", data=deep, headers=HEADERS)
    assert response.status_code == 400 and "nested too deeply" in response.get_json()["error"]


def project_all(tracker, database_url) -> None:
    """Project everything; an accepted event the projector had to set aside is a failure here."""
    Projector(tracker).catch_up()
    assert query(database_url, "SELECT notification_id, error FROM projection_quarantine") == []


def assert_visible(database_url, event: dict, run_id: str, task_id: str) -> None:
    """The accepted event is in the views, as it was sent (after validation's own normalising)."""
    kind, run = event["type"], event.get("run_id", run_id)
    at = valid.iso_time(event["time"]) if "time" in event else None
    [row] = query(database_url, "SELECT workflow_name, description, user_name, group_name, source, params, status, "
                                "steps_done, steps_total, error_message, last_event_at, created_at "
                                "FROM workflow_runs WHERE id = %s", run)
    [task] = query(database_url, "SELECT task_name, task_version, input_data, params, external_status, progress, "
                                 "results, result_message, error_message, job_ids FROM job_executions WHERE id = %s",
                   event["task_id"] if kind == "task_created" else task_id)
    if kind in ("run_created", "run_started") and "name" in event:
        assert row[:5] == (event["name"], event.get("description") or "", event.get("user"), event.get("group"),
                           event.get("source"))
        assert same_json(row[5], event.get("params") or {})
        assert at is None or row[11] == at
    elif kind == "run_progress":
        assert row[7:9] == (event["done"], event["total"])
    elif kind == "run_failed":
        assert (row[6], row[9]) == ("failed", event["error"])
    elif kind == "run_cancelled":
        assert row[6] == "cancelled" and row[9] == (event.get("reason") or None)
    elif kind == "run_finished":
        assert row[6] == "completed"
    elif kind == "heartbeat":
        assert at is None or row[10] >= at
    elif kind == "task_created":
        assert task[:2] == (event["name"], event.get("version"))
        assert same_json(list(task[2:4]), [event.get("input") or {}, event.get("params") or {}])
    elif kind == "task_status":
        assert task[4] == event["status"]
    elif kind == "task_progress":
        assert task[5] == str(event["progress"])
    elif kind == "task_result":
        assert same_json(task[6][-1], event["result"])
    elif kind == "task_finished":
        assert task[7] == event.get("message")
    elif kind == "task_failed":
        assert task[8] == event["error"]
    elif kind == "job_id":
        assert task[9][-1] == str(event["job_id"])
        assert query(database_url, "SELECT count(*) FROM job_accounting WHERE job_id = %s AND task_id = %s",
                     str(event["job_id"]), task_id) == [(1,)]
    elif kind == "log":
        assert query(database_url, "SELECT level, message FROM log_entries WHERE run_id = %s", run) == [
            ((event.get("level") or "INFO").upper(), event["message"])]


def same_json(read_back, sent) -> bool:
    """Equal as JSON: jsonb keeps numbers as decimals, so 1e308 sent comes back as 10**308 (the same number)."""
    if isinstance(sent, bool) or sent is None or isinstance(sent, str):
        return read_back == sent and type(read_back) is type(sent)
    if isinstance(sent, (int, float)):
        return isinstance(read_back, (int, float)) and float(read_back) == float(sent)
    if isinstance(sent, dict):
        return isinstance(read_back, dict) and read_back.keys() == sent.keys() and all(
            same_json(read_back[key], value) for key, value in sent.items())
    return isinstance(read_back, list) and len(read_back) == len(sent) and all(
        same_json(back, value) for back, value in zip(read_back, sent))


# Through the tracker.

def tracker_calls(good: bool) -> dict:
    """Each command's arguments: inside their domains, or anywhere."""
    def pick(good_values, any_values):
        return good_values if good else any_values

    name, text = pick(GOOD_NAME, TEXT), pick(GOOD_NAME, TEXT)
    optional_name = name | st.none()
    json_object, json_value = pick(GOOD_OBJECT, JSON) | st.none(), pick(GOOD_JSON, JSON)
    at = pick(GOOD_AWARE_TIMES, AWARE_TIMES) | st.none()
    number = pick(GOOD_INTEGER | GOOD_FLOAT, NUMBER)
    return {
        "initiate_workflow": dict(name=name, description=text, user=optional_name, group=optional_name,
                                  params=json_object, at=at),
        "update_workflow_progress": dict(done=pick(st.just(0), NUMBER), total=pick(GOOD_COUNT, NUMBER), at=at),
        "add_task_to_workflow": dict(task_name=name, task_version=optional_name, input_data=json_object,
                                     kwargs=json_object, at=at),
        "update_task_progress": dict(progress=number | name, at=at),
        "add_job_id": dict(slurm_job_id=pick(GOOD_INTEGER, NUMBER) | name, at=at),
        "add_result": dict(result=json_value, at=at),
        "update_task_status": dict(status=name, at=at),
        "record_log": dict(message=text, level=pick(st.sampled_from(["info", "ERROR"]), st.just("LOUD") | TEXT),
                           at=at),
        "fail_workflow": dict(error_message=text, at=at),
    }


TASK_METHODS = ("update_task_progress", "add_job_id", "add_result", "update_task_status")


@EXAMPLES
@given(data=st.data())
def test_every_tracker_call_is_refused_naming_its_argument_or_projected(tracker, database_url, data):
    run_id = tracker.initiate_workflow("r", "", None, None)
    task_id = tracker.add_task_to_workflow(run_id, "t", None, None, None)
    calls = tracker_calls(good=data.draw(st.integers(0, 9), label="aim") < 7)
    method = data.draw(st.sampled_from(sorted(calls)), label="method")
    arguments = {name: data.draw(values, label=name) for name, values in calls[method].items()}
    target = () if method == "initiate_workflow" else (task_id,) if method in TASK_METHODS else (run_id,)
    try:
        made = getattr(tracker, method)(*target, **arguments)
    except InvalidArgumentError as error:
        assert str(error).split(":")[0] in arguments, str(error)
        outcome(f"{method} refused")
        return
    outcome(f"{method} accepted")
    project_all(tracker, database_url)
    run = made if method == "initiate_workflow" else run_id
    [(runs,)] = query(database_url, "SELECT count(*) FROM workflow_runs WHERE id = %s", str(run))
    assert runs == 1
    if method == "add_task_to_workflow":
        [(name,)] = query(database_url, "SELECT task_name FROM job_executions WHERE id = %s", str(made))
        assert name == arguments["task_name"]
    elif method == "update_workflow_progress":
        assert query(database_url, "SELECT steps_done, steps_total FROM workflow_runs WHERE id = %s",
                     str(run_id)) == [(arguments["done"], arguments["total"])]
    elif method == "update_task_progress":
        assert query(database_url, "SELECT progress FROM job_executions WHERE id = %s",
                     str(task_id)) == [(str(arguments["progress"]),)]
    elif method == "add_result":
        [(results,)] = query(database_url, "SELECT results FROM job_executions WHERE id = %s", str(task_id))
        assert same_json(results, [arguments["result"]])
    elif method == "record_log":
        assert query(database_url, "SELECT message FROM log_entries WHERE run_id = %s",
                     str(run_id)) == [(arguments["message"],)]
    elif method == "initiate_workflow":
        [(params,)] = query(database_url, "SELECT params FROM workflow_runs WHERE id = %s", str(made))
        assert same_json(params, arguments["params"] or {})
