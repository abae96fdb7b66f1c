"""The plugin's sender and spool on their own: order and exactly-once through
outages, a full queue and exits, against a fake endpoint (no Snakemake, no
database): it records the ids it receives, and can be down."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from snakemake_logger_plugin_appliance import sender as sending
from snakemake_logger_plugin_appliance import spool as spooling
from snakemake_logger_plugin_appliance.sender import Sender, masked, url_problem
from tests.support.waiting import wait_for


@pytest.fixture(autouse=True)
def quick(monkeypatch):
    monkeypatch.setattr(sending, "LINGER", 0.05)
    monkeypatch.setattr(sending, "RETRY_MIN", 0.1)


def events(count: int) -> list[dict]:
    return [{"id": str(uuid.uuid4()), "type": "log", "run_id": "r", "message": str(n)} for n in range(count)]


def test_an_outage_loses_nothing_and_keeps_the_order(fake, tmp_path):
    reports = []
    sender = Sender(fake.url, "t", tmp_path, exit_wait=10, report=reports.append).start()
    sent = events(3000)
    for n in range(0, 3000, 10):
        if n == 1000:
            fake.down = True
        if n == 2000:
            fake.down = False
        sender.put(sent[n:n + 10])
        time.sleep(0.001)
    sender.close()
    assert fake.first_arrivals() == [event["id"] for event in sent]
    assert [r for r in reports if "cannot reach" in r] and not [r for r in reports if "kept in" in r
                                                                 and "not sent yet" in r]
    assert not list(tmp_path.rglob("*.jsonl"))


def test_a_full_queue_spills_to_the_spool_in_order(fake, tmp_path):
    sender = Sender(fake.url, "t", tmp_path, exit_wait=10, queue_size=5, report=lambda m: None).start()
    sent = events(500)
    for event in sent:
        sender.put([event])
    sender.close()
    assert fake.first_arrivals() == [event["id"] for event in sent]


def test_what_is_left_at_exit_is_sent_by_the_next_sender(fake, tmp_path):
    fake.down = True
    reports = []
    first = Sender(fake.url, "t", tmp_path, exit_wait=0.5, report=reports.append).start()
    sent = events(50)
    first.put(sent)
    first.close()
    assert any("50 events not sent yet are kept in" in r for r in reports)
    fake.down = False
    later = events(5)
    second = Sender(fake.url, "t", tmp_path, exit_wait=5, report=reports.append).start()
    second.put(later)
    second.close()
    assert fake.first_arrivals() == [event["id"] for event in sent + later]
    assert not list(tmp_path.rglob("*.jsonl"))


def test_a_refused_token_is_reported_once_and_everything_is_kept(fake, tmp_path):
    fake.status = 401
    reports = []
    sender = Sender(fake.url, "t", tmp_path, exit_wait=1, report=reports.append).start()
    for _ in range(5):
        sender.put(events(10))
        time.sleep(0.1)
    sender.close()
    assert len([r for r in reports if "refused the token" in r]) == 1
    assert sum(len(path.read_text().splitlines()) for path in tmp_path.rglob("*.jsonl")) == 50


def test_heartbeats_while_the_run_is_quiet(fake, tmp_path):
    run_id = "11111111-1111-1111-1111-111111111111"
    started = time.monotonic()  # before the sender: its silence counts from its creation
    sender = Sender(fake.url, "t", tmp_path, heartbeat=0.3, report=lambda m: None).start()
    sender.heartbeat_run = run_id
    wait_for(lambda: len(fake.events) >= 3, 10, message="three heartbeats")
    elapsed = time.monotonic() - started
    sender.heartbeat_run = None
    sender.close()
    beats = fake.events[:3]
    assert {(event["type"], event["run_id"]) for event in beats} == {("heartbeat", run_id)}
    assert len({event["id"] for event in beats}) == 3
    assert elapsed >= 0.9  # one per 0.3 s of silence, not a burst


def test_a_batch_too_large_for_the_appliance_is_split(fake, tmp_path):
    fake.max_events = 7
    sender = Sender(fake.url, "t", tmp_path, exit_wait=10, report=lambda m: None).start()
    sent = events(100)
    sender.put(sent)
    sender.close()
    assert fake.first_arrivals() == [event["id"] for event in sent]


@pytest.mark.parametrize("status", [400, 409])  # bad events; a run or task id already taken
def test_rejected_events_are_put_aside_once_and_the_rest_goes_on(fake, tmp_path, status):
    fake.status = status
    reports = []
    sender = Sender(fake.url, "t", tmp_path, exit_wait=5, report=reports.append).start()
    sender.put(events(3))
    wait_for(lambda: any("rejected 3 events" in r for r in reports), 10, message="the rejection reported")
    fake.status = 200
    later = events(2)
    sender.put(later)
    sender.close()
    assert len([r for r in reports if "rejected 3 events" in r]) == 1
    assert fake.first_arrivals() == [event["id"] for event in later]
    (aside,) = tmp_path.rglob("rejected/*.jsonl")
    assert len(aside.read_text().splitlines()) == 3


def test_many_spooled_events_drain_in_order_exactly_once_from_small_segments(fake, tmp_path):
    fake.down = True
    reports = []
    sender = Sender(fake.url, "t", tmp_path, exit_wait=30, report=reports.append).start()
    sent = events(5500)
    for n in range(0, len(sent), 100):
        sender.put(sent[n:n + 100])
    wait_for(lambda: sender.spool.count == len(sent), 30, message="every event spooled")
    sizes = [len(path.read_text().splitlines()) for path in sorted(tmp_path.rglob("*.jsonl"))]
    assert sum(sizes) == len(sent) and max(sizes) <= spooling.SEGMENT_EVENTS  # sent whole, never rewritten
    fake.down = False
    wait_for(lambda: len(fake.received) >= len(sent), 60, message="the spool drained")
    sender.close()
    assert fake.received == [event["id"] for event in sent]  # in order, each once
    assert not list(tmp_path.rglob("*.jsonl")) and not list(tmp_path.rglob("*.sent"))


def test_a_large_segment_of_an_earlier_version_is_read_once_and_resumed_where_it_stopped(tmp_path):
    segment = tmp_path / "000000000001.jsonl"
    sent = events(2500)
    segment.write_text("".join(json.dumps(event) + "\n" for event in sent))
    before = os.stat(segment)
    received, fail_at = [], [2]

    def send(batch):
        fail_at[0] -= 1
        if fail_at[0] == 0:
            raise sending.Unreachable("down")
        received.extend(event["id"] for event in batch)

    with pytest.raises(sending.Unreachable):
        spooling.drain_segment(segment, send, 1000)
    after = os.stat(segment)
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == (before.st_ino, before.st_mtime_ns, before.st_size)
    assert segment.with_suffix(".sent").read_text() == "1000"
    assert spooling.drain_segment(segment, send, 1000) == 1500
    assert received == [event["id"] for event in sent]
    assert not segment.exists() and not segment.with_suffix(".sent").exists()


def test_spools_of_earlier_runs_are_sent_when_the_appliance_comes_back_during_this_run(fake, tmp_path):
    fake.down = True
    reports = []
    first = Sender(fake.url, "t", tmp_path, exit_wait=0.2, report=lambda m: None).start()
    earlier = events(30)
    first.put(earlier)
    first.close()
    second = Sender(fake.url, "t", tmp_path, exit_wait=10, report=reports.append).start()
    wait_for(lambda: any("cannot reach" in r for r in reports), 10, message="the start's attempt failing")
    fake.down = False
    # Nothing of this run to send: only the retry loop can send the earlier run's events.
    wait_for(lambda: set(fake.received) >= {event["id"] for event in earlier}, 30,
             message="the earlier run's events")
    assert second.spool.count == 0
    second.close()
    assert fake.first_arrivals() == [event["id"] for event in earlier]
    assert not list(tmp_path.rglob("*.jsonl"))


@pytest.mark.parametrize("url, problem", [
    ("host:8000", "does not start with http:// or https://"),
    ("127.0.0.1:8000", "does not start with http:// or https://"),
    ("ftp://host", "does not start with http:// or https://"),
    ("http://", "names no host"),
    ("http://host:port", "port is not a number"),
    ("http://bob:s3cret@host:8000", "user name or password"),
    ("", "does not start with http:// or https://"),
])
def test_a_malformed_url_is_named_with_its_problem(url, problem):
    assert problem in url_problem(url)


@pytest.mark.parametrize("url", ["http://host:8000", "https://appliance.example.org", "http://[::1]:8000/"])
def test_a_good_url_has_no_problem(url):
    assert url_problem(url) is None


def test_a_malformed_url_is_reported_once_and_nothing_is_spooled(fake, tmp_path):
    reports = []
    sender = Sender("bob:s3cret@" + fake.url.removeprefix("http://"), "t", tmp_path, exit_wait=5,
                    report=reports.append).start()
    started = time.monotonic()
    for _ in range(3):
        sender.put(events(10))
    sender.close()
    assert time.monotonic() - started < 1  # no waiting for what can never be sent
    (report,) = reports
    assert "cannot be used" in report and "http://" in report and "s3cret" not in report
    assert fake.received == [] and not list(tmp_path.rglob("*"))


def test_a_password_in_a_url_is_masked_in_messages():
    assert masked("http://bob:s3cret@host:8000/x") == "http://***@host:8000/x"
    assert masked("http://host:8000") == "http://host:8000"
    assert masked("bob:s3cret@host:8000/a@b") == "***@host:8000/a@b"  # no scheme: urlsplit misreads it
    reports = []
    Sender("http://bob:s3cret@host:8000", "t", "/nonexistent", report=reports.append).start().close()
    assert reports == ["--logger-appliance-url 'http://***@host:8000' cannot be used: it holds a user name or "
                       "password (the appliance takes its token, not these). Give the appliance's address, such as "
                       "http://appliance.example.org:8000; this run is not recorded"]


@pytest.mark.parametrize("exit_wait", [None, 1.0])  # the default (5 s), and a configured one
def test_at_exit_snakemake_waits_at_most_the_exit_wait(fake, tmp_path, exit_wait):
    fake.down = True
    reports = []
    options = {} if exit_wait is None else {"exit_wait": exit_wait}
    sender = Sender(fake.url, "t", tmp_path, report=reports.append, **options).start()
    sender.put(events(20))
    wait_for(lambda: any("cannot reach" in r for r in reports), 10, message="the first attempt failing")
    started = time.monotonic()
    sender.close()
    elapsed = time.monotonic() - started
    bound = 5.0 if exit_wait is None else exit_wait
    assert bound - 0.1 <= elapsed <= bound + 2  # it kept trying that long, and no longer
    assert any("20 events not sent yet are kept in" in r for r in reports)


def test_an_undecodable_file_name_is_sent_with_a_replacement_character_not_spooled_forever(fake, tmp_path):
    # A file name that is not UTF-8 reaches Python as a lone surrogate, which no JSON
    # parser or database takes; sent as is, the run was refused or retried forever.
    name = os.fsdecode(b"sample_\xff.fastq")
    reports = []
    sender = Sender(fake.url, "t", tmp_path, exit_wait=5, report=reports.append).start()
    sender.put([{"id": str(uuid.uuid4()), "type": "log", "run_id": "r", "message": f"reading {name}",
                 "params": {name: [name, "\U0001F600 é"]}}])
    sender.close()
    (event,) = fake.events
    assert event["message"] == "reading sample_\ufffd.fastq"
    assert event["params"] == {"sample_\ufffd.fastq": ["sample_\ufffd.fastq", "\U0001F600 é"]}  # the rest kept
    assert not reports and not list(tmp_path.rglob("*.jsonl"))


def test_a_spooled_undecodable_file_name_is_sent_from_the_spool_too(fake, tmp_path):
    fake.down = True
    first = Sender(fake.url, "t", tmp_path, exit_wait=0.3, report=lambda m: None).start()
    first.put([{"id": str(uuid.uuid4()), "type": "log", "run_id": "r", "message": os.fsdecode(b"\xfe\xff")}])
    first.close()
    fake.down = False
    Sender(fake.url, "t", tmp_path, exit_wait=5, report=lambda m: None).start().close()
    assert [event["message"] for event in fake.events] == ["\ufffd\ufffd"]


@pytest.mark.parametrize("status, reason, says, not_says", [
    (403, "ingest is disabled: set APPLIANCE_INGEST_TOKEN to a long random secret",
     "the appliance does not take events (HTTP 403: ingest is disabled: set APPLIANCE_INGEST_TOKEN to a long "
     "random secret); its administrator must set APPLIANCE_INGEST_TOKEN", "--logger-appliance-token"),
    (401, "a valid 'Authorization: Bearer <token>' header is required",
     "the appliance refused the token (HTTP 401: a valid 'Authorization: Bearer <token>' header is required); "
     "check --logger-appliance-token or SNAKEMAKE_LOGGER_APPLIANCE_TOKEN", "APPLIANCE_INGEST_TOKEN,"),
])
def test_a_refusal_relays_the_appliances_reason_and_the_fix_on_the_right_side(fake, tmp_path, status, reason,
                                                                              says, not_says):
    fake.status, fake.reason = status, reason
    reports = []
    sender = Sender(fake.url, "t", tmp_path, exit_wait=1, report=reports.append).start()
    sender.put(events(3))
    sender.close()
    (refused,) = [r for r in reports if f"HTTP {status}" in r]
    assert says in refused and not_says not in refused


def test_spooled_events_are_sent_at_exit_once_the_appliance_is_back(fake, tmp_path, monkeypatch):
    # The backoff would wait long after the outage; at exit, the spool is tried at once, then often.
    monkeypatch.setattr(sending, "RETRY_MIN", 60.0)
    fake.down = True
    reports = []
    sender = Sender(fake.url, "t", tmp_path, exit_wait=5, report=reports.append).start()
    sent = events(40)
    sender.put(sent)
    wait_for(lambda: sender.spool.count == 40, 10, message="the events spooled")
    fake.down = False
    started = time.monotonic()
    sender.close()
    assert time.monotonic() - started < 2  # well inside the exit wait
    assert fake.first_arrivals() == [event["id"] for event in sent]
    assert not [r for r in reports if "not sent yet" in r] and not list(tmp_path.rglob("*.jsonl"))


def test_what_stays_spooled_at_exit_names_the_exact_flush_command(fake, tmp_path):
    fake.down = True
    reports = []
    spool_root = tmp_path / "my spool"
    sender = Sender(fake.url, "t", spool_root, exit_wait=0.5, report=reports.append).start()
    sender.put(events(5))
    sender.close()
    (left,) = [r for r in reports if "not sent yet" in r]
    assert left.endswith(f"or: python -m snakemake_logger_plugin_appliance flush --url {fake.url} "
                         f"--spool-dir '{spool_root}' (with SNAKEMAKE_LOGGER_APPLIANCE_TOKEN set)")
