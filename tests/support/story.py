"""Runs as a source sends them, for the browser tests: events at the times they
happened (Story), a realistic history of five runs (realistic_history), and the
app serving them on a loopback port once ingested and projected (serve)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from uuid import uuid4

from werkzeug.serving import make_server

from appliance.projection import Projector
from tests.support.web_support import TOKEN, XSS, bearer, make_app

NOW = datetime.now(timezone.utc).replace(microsecond=0)


class Story:
    """Events of runs as a source sends them, each at a time (minutes before now)."""

    def __init__(self):
        self.events = []

    def add(self, minutes_ago: float, type: str, **fields) -> str:
        at = NOW - timedelta(minutes=minutes_ago)
        self.events.append({"id": str(uuid4()), "type": type, "time": at.isoformat(), **fields})
        return fields.get("task_id") or fields.get("run_id")

    def run(self, minutes_ago, name, user, group, source, description=""):
        return self.add(minutes_ago, "run_started", run_id=str(uuid4()), name=name, user=user, group=group,
                        source=source, description=description)

    def task(self, run, name, start, end=None, job=None, error=None, version=None):
        """A task from `start` to `end` minutes ago (running when end is None)."""
        task = self.add(start, "task_created", run_id=run, task_id=str(uuid4()), name=name, version=version)
        self.add(start, "task_started", task_id=task)
        if job:
            self.add(start, "job_id", task_id=task, job_id=job)
        self.add(start, "log", run_id=run, task_id=task, message=f"rule {name}: submitted"
                 + (f" as Slurm job {job}" if job else ""))
        if error:
            self.add(end, "task_failed", task_id=task, error=error)
            self.add(end, "log", run_id=run, task_id=task, level="ERROR", message=f"rule {name}: {error}")
        elif end is not None:
            self.add(end, "task_finished", task_id=task, message="ok")
        return task


def realistic_history() -> tuple[list[dict], dict]:
    story = Story()
    qc = story.run(1500, "nightly-qc", "alice", "genomics", "snakemake")
    story.task(qc, "fastqc", 1499, 1490)
    story.add(1489, "run_finished", run_id=qc)

    rna = story.run(52, "rnaseq-alignment", "alice", "genomics", "snakemake", "batch 2024-05, 3 samples")
    for n, sample in enumerate(("s1", "s2", "s3")):
        story.task(rna, f"fastqc {sample}", 51.5 - n * 0.5, 48 - n, job=str(88120 + n))
        story.task(rna, f"trim {sample}", 47.5 - n, 43 - n, job=str(88130 + n))
        story.task(rna, f"star_align {sample}", 42.5 - n, 26 - n * 2, job=str(88140 + n))
    story.task(rna, "featurecounts", 21.5, 17, job="88150")
    story.add(17.5, "log", run_id=rna, level="WARNING", message="scratch disk 91% full")
    story.task(rna, "multiqc", 16.8, 15.5)
    story.add(15.4, "run_finished", run_id=rna)

    cell = story.run(34, "cellpose-segmentation", "bob", "imaging", "biomero", "plate 7, 384 wells")
    story.task(cell, "fetch_images", 33.5, 30, job="4710", version="2.1")
    story.task(cell, "segment", 29.5, 12, job="4711", version="2.1",
               error="MemoryError: out of memory on node c12 (64 GiB)")
    story.add(11.9, "run_failed", run_id=cell, error="segment failed: out of memory on node c12")

    variants = story.run(9, "variant-calling", "dana", "genomics", "snakemake")
    story.task(variants, "bwa_mem", 8.5, 4, job="88201")
    story.task(variants, "mark_duplicates", 3.8, 1.5, job="88202")
    story.task(variants, "haplotype_caller", 1.4, job="88203")
    story.task(variants, "haplotype_caller chr2", 1.2, job="88204")

    hostile = story.run(2, XSS, "carol", "imaging", "biomero")
    story.task(hostile, "export", 1.5, job="4799")
    story.add(0.5, "log", run_id=hostile, message=XSS)
    return story.events, {"rna": rna, "cell": cell, "hostile": hostile}


def serve(database_url, tracker, events, runs):
    """(base URL, runs) of the app on a free loopback port once `events` went through
    ingest and the projector; the server stops when the generator is closed."""
    app = make_app(database_url)
    for start in range(0, len(events), 1000):
        response = app.test_client().post("/api/v1/events", json={"events": events[start:start + 1000]},
                                          headers=bearer(TOKEN))
        assert response.status_code == 200, response.json
    Projector(tracker).catch_up()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", runs
    server.shutdown()
