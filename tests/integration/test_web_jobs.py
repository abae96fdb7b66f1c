"""The jobs page at any depth: by number through the first 10,000 jobs, then by
cursor (`older` / `newer`, asked for with `before` / `after`) to the oldest job,
with the filters, and every cursor the server did not give out a 400 naming it."""

import base64
import html
import re
from datetime import datetime, timezone
from urllib.parse import urlencode
from uuid import uuid4

import pytest

from appliance.projection import Projector
from appliance.web.data import encode_cursor
from tests.support.many_jobs import add_jobs
from tests.support.sql import query

JOBS = 10_250  # past the 10,000 that pages by number reach
NEWEST = datetime(2026, 12, 1, tzinfo=timezone.utc)


@pytest.fixture
def many(database_url):
    add_jobs(database_url, JOBS, NEWEST)
    return database_url


def keys_newest_first(url, where="TRUE"):
    """Every job's (job id, task id), in the page's order, as the database sorts them."""
    return [tuple(row) for row in query(url, f"SELECT job_id, task_id::text FROM job_accounting WHERE {where} "
                                             "ORDER BY created_at DESC, task_id DESC, job_id DESC")]


def keys(answer):
    return [(job["job_id"], job["task_id"]) for job in answer["jobs"]]


def get(client, path, **arguments):
    """`path` (which may hold a query already) with more arguments."""
    return client.get(f"{path}{'&' if '?' in path else '?'}{urlencode(arguments)}" if arguments else path)


def walk(client, path, cursor_name, answer, answer_field):
    """The answers from `answer` on, following `answer_field` (older or newer) to its end."""
    answers = [answer]
    while answers[-1][answer_field]:
        answers.append(get(client, path, **{cursor_name: answers[-1][answer_field]}).json)
    return answers


def test_every_job_is_reached_past_the_numbered_pages_down_to_the_oldest(client, many):
    numbered = [get(client, "/api/v1/jobs?limit=1000", page=n).json for n in range(1, 11)]
    assert {(a["total"], a["total_capped"], a["pages"]) for a in numbered} == {(10_000, True, 10)}
    assert client.get("/api/v1/jobs?limit=1000&page=11").json["jobs"] == []  # numbers stop at 10,000
    deeper = walk(client, "/api/v1/jobs?limit=1000", "before", numbered[-1], "older")[1:]
    assert [len(a["jobs"]) for a in deeper] == [250] and deeper[-1]["page"] is None
    seen = [key for answer in numbered + deeper for key in keys(answer)]
    assert seen == keys_newest_first(many)  # each job once, in order, however many share a time or an id
    oldest = query(many, "SELECT job_id FROM job_accounting ORDER BY created_at, task_id, job_id LIMIT 1")[0][0]
    assert deeper[-1]["jobs"][-1]["job_id"] == oldest and deeper[-1]["older"] is None


def test_cursors_alone_walk_from_the_newest_to_the_oldest_and_back(client, many):
    first = client.get("/api/v1/jobs?limit=900").json
    down = walk(client, "/api/v1/jobs?limit=900", "before", first, "older")
    assert [key for answer in down for key in keys(answer)] == keys_newest_first(many)
    assert len(down) == 12 and first["newer"] is None and down[-1]["older"] is None
    up = walk(client, "/api/v1/jobs?limit=900", "after", down[-1], "newer")
    assert [keys(answer) for answer in up] == [keys(answer) for answer in reversed(down)]  # the same pages
    assert up[-1]["newer"] is None


def test_a_cursor_page_is_the_same_page_as_its_number(client, many):
    by_number = client.get("/api/v1/jobs?page=3").json
    by_cursor = client.get("/api/v1/jobs", query_string={"before": client.get("/api/v1/jobs?page=2").json["older"]}).json
    assert keys(by_cursor) == keys(by_number) and by_number["older"] == by_cursor["older"]
    assert client.get("/api/v1/jobs", query_string={"after": by_number["newer"]}).json["jobs"] == \
        client.get("/api/v1/jobs?page=2").json["jobs"]


def test_jobs_recorded_meanwhile_do_not_shift_the_next_page(client, many, database_url):
    first = client.get("/api/v1/jobs").json
    add_jobs(database_url, 30, NEWEST.replace(day=2), prefix="new-", name="later")
    after = client.get("/api/v1/jobs", query_string={"before": first["older"]}).json
    assert keys(after) == keys_newest_first(database_url, "job_id NOT LIKE 'new-%%'")[100:200]


@pytest.mark.parametrize("owner, where", [("user=ann", "user_name = 'ann'"), ("user=bob&group=lab", "user_name = 'bob'"),
                                          ("group=lab", "TRUE")])
def test_the_filters_stay_with_the_cursors_to_the_owners_oldest_job(client, many, owner, where):
    path = f"/api/v1/jobs?{owner}&limit=1000"
    answers = walk(client, path, "before", client.get(path).json, "older")
    assert [key for answer in answers for key in keys(answer)] == keys_newest_first(many, where)


def test_one_recycled_job_id_pages_by_cursor_too(client, many):
    first = client.get("/api/v1/jobs/4000?limit=1").json
    second = client.get("/api/v1/jobs/4000", query_string={"limit": 1, "before": first["older"]}).json
    assert first["total"] == 2 and second["older"] is None and second["newer"]
    assert {first["jobs"][0]["task_id"], second["jobs"][0]["task_id"]} == \
        {task for job, task in keys_newest_first(many, "job_id = '4000'")}


def test_job_ids_of_any_text_survive_a_cursor(client, tracker):
    ids = ["a|b", "a|b|c", "ジョブ 7", "x" * 1000, "%2F|=&"]
    run = tracker.initiate_workflow("odd ids", "", "ann", "lab")
    for job_id in ids:
        task = tracker.add_task_to_workflow(run, "t", None, {}, {})
        tracker.add_job_id(task, job_id)
    Projector(tracker).catch_up()
    answers = walk(client, "/api/v1/jobs?limit=1", "before", client.get("/api/v1/jobs?limit=1").json, "older")
    assert sorted(job["job_id"] for answer in answers for job in answer["jobs"]) == sorted(ids)


def test_the_page_links_older_and_newer_jobs_at_any_depth_keeping_the_filters(client, many):
    last_numbered = client.get("/jobs?group=lab&page=100").get_data(as_text=True)
    assert "10,000+ jobs (counted up to 10,000)" in last_numbered and "page 100 of 100+" in last_numbered
    older = html.unescape(re.search(r'<a rel="next" href="([^"]*)">Older jobs →</a>', last_numbered).group(1))
    assert older.startswith("/jobs?group=lab&before=")
    deep = client.get(older).get_data(as_text=True)
    assert re.search(r'<a href="/jobs\?group=lab">Newest jobs</a>', deep)
    newer = html.unescape(re.search(r'<a rel="prev" href="([^"]*)">← Newer jobs</a>', deep).group(1))
    assert newer.startswith("/jobs?group=lab&after=") and not re.search(r"page \d", deep.split('class="pager"')[1])
    assert "Older jobs" in deep  # 250 more
    twin = html.unescape(re.search(r'<a class="json" href="([^"]*)"', deep).group(1))
    assert client.get(twin).json["jobs"] == client.get(older.replace("/jobs", "/api/v1/jobs")).json["jobs"]
    back = client.get(newer.replace("/jobs", "/api/v1/jobs")).json
    assert keys(back) == keys(client.get("/api/v1/jobs?group=lab&page=100").json)


def cursor_of(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


TASK = str(uuid4())
NOT_GIVEN_OUT = [
    "x", "%%%", cursor_of("a|b|c"), cursor_of(f"2026-12-01T00:00:00|{TASK}|7"),  # no offset
    cursor_of(f"0001-01-01T00:00:00+15:00|{TASK}|7"),  # before year 1 in UTC
    cursor_of(f"2026-12-01T00:00:00+00:00|{TASK}"),  # the dashboard's: no job id
    cursor_of(f"2026-12-01T00:00:00+00:00|not-a-uuid|7"), cursor_of(f"2026-12-01T00:00:00+00:00|{TASK}|a\x00b"),
    base64.urlsafe_b64encode(b"2026-12-01T00:00:00+00:00|" + TASK.encode() + b"|\xff").decode(),
]


@pytest.mark.parametrize("name", ["before", "after"])
@pytest.mark.parametrize("value", NOT_GIVEN_OUT)
def test_a_cursor_the_server_did_not_give_out_is_a_400_naming_it(client, seeded, name, value):
    for path in ("/api/v1/jobs", "/api/v1/jobs/align-4711"):
        response = client.get(path, query_string={name: value})
        assert response.status_code == 400 and response.json["error"].startswith(f"{name} is not one this server")
    page = client.get("/jobs", query_string={name: value})
    assert page.status_code == 400 and f"{name} is not one this server gave out" in page.get_data(as_text=True)


@pytest.mark.parametrize("arguments, message", [
    ({"page": 2, "before": "CURSOR"}, "page cannot be given with before"),
    ({"page": 1, "after": "CURSOR"}, "page cannot be given with after"),
    ({"before": "CURSOR", "after": "CURSOR"}, "before and after cannot both be given"),
    ({"before": "x" * 6001}, "before must be at most 6000 characters"),
])
def test_cursors_given_with_a_page_or_each_other_are_refused_by_name(client, seeded, arguments, message):
    cursor = encode_cursor(NEWEST, uuid4(), "7")
    response = client.get("/api/v1/jobs", query_string={k: cursor if v == "CURSOR" else v for k, v in arguments.items()})
    assert response.status_code == 400 and message in response.json["error"]


def test_the_dashboard_cursor_is_as_before_and_refuses_a_jobs_cursor(client, seeded):
    when, run = datetime(2026, 12, 1, tzinfo=timezone.utc), uuid4()
    assert encode_cursor(when, run) == cursor_of(f"{when.isoformat()}|{run}")  # cursors given out before still work
    assert client.get("/api/v1/runs", query_string={"cursor": encode_cursor(when, run)}).status_code == 200
    response = client.get("/api/v1/runs", query_string={"cursor": encode_cursor(when, run, "7")})
    assert response.status_code == 400 and response.json["error"] == "cursor is not one this server gave out"
