"""A fake appliance endpoint for the plugin's sender and handler tests: it records
the ids it receives, and can be down or answer a chosen status."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeAppliance:
    def __init__(self):
        self.received: list[str] = []  # event ids, in arrival order, resends included
        self.events: list[dict] = []  # the events themselves, likewise
        self.down = False
        self.status = 200
        self.max_events = 10_000  # more in one request: 413
        self.reason = ""  # the error a refusal names in its JSON body, as the appliance does
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
                        fake.events += body["events"]
                    self.send_response(fake.status)
                body = json.dumps({"error": fake.reason} if fake.reason else {}).encode()
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

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
