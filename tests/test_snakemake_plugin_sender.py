"""The plugin's sender and spool on their own: order and exactly-once through
outages, a full queue and exits, against a fake endpoint (no Snakemake, no
database): it records the ids it receives, and can be down."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from snakemake_logger_plugin_appliance import sender as sending
from snakemake_logger_plugin_appliance.sender import Sender
from tests.waiting import wait_for


class FakeAppliance:
    def __init__(self):
        self.received: list[str] = []  # event ids, in arrival order, resends included
        self.down = False
        self.status = 200
        self.max_events = 10_000  # more in one request: 413
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if fake.down:
                    self.send_response(503)
                elif len(body["events"]) > fake.max_events:
                    self.send_response(413)
                else:
                    if fake.status == 200:
                        fake.received += [event["id"] for event in body["events"]]
                    self.send_response(fake.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def first_arrivals(self) -> list[str]:
        seen, order = set(), []
        for event_id in self.received:
            if event_id not in seen:
                seen.add(event_id)
                order.append(event_id)
        return order


@pytest.fixture
def fake():
    appliance = FakeAppliance()
    yield appliance
    appliance.server.shutdown()
    appliance.server.server_close()


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
    sender = Sender(fake.url, "t", tmp_path, heartbeat=0.3, report=lambda m: None).start()
    sender.heartbeat_run = "11111111-1111-1111-1111-111111111111"
    time.sleep(1.6)
    sender.heartbeat_run = None
    sender.close()
    assert 2 <= len(fake.received) <= 6


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
