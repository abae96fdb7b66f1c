"""Capture the log records real Snakemake runs hand to logger plugins, as fixtures.

    python plugins/snakemake-logger-plugin-appliance/tests/capture.py [case ...]

Runs the workflows under tests/workflows with a capturing logger plugin and
writes tests/fixtures/<case>.jsonl: one record a line, with the attributes
Snakemake set (a ResourceList as its items). The mapping is built against
these, not against the interface's documentation.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
SNAKEMAKE = Path(sys.executable).parent / "snakemake"
NOISE = {"args", "exc_info", "exc_text", "stack_info", "filename", "module", "lineno", "funcName", "msecs",
         "relativeCreated", "thread", "threadName", "processName", "process", "taskName", "pathname", "levelno",
         "name", "message", "quietness", "platform", "python_version"}

PLUGIN = '''
import json, os
from snakemake_interface_logger_plugins.base import LogHandlerBase

def plain(value):
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if hasattr(value, "items") and not isinstance(value, (list, tuple)) or type(value).__name__ == "ResourceList":
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [plain(v) for v in value]
    return str(value)

class LogHandler(LogHandlerBase):
    def __post_init__(self):
        self.out = open(os.environ["CAPTURE_FILE"], "a")
    def emit(self, record):
        fields = {k: plain(v) for k, v in vars(record).items() if k not in NOISE}
        self.out.write(json.dumps(fields) + "\\n")
        self.out.flush()
    def close(self):
        self.out.close()
        super().close()
    writes_to_stream = writes_to_file = has_formatter = False
    has_filter = needs_rulegraph = True
'''

CASES = {  # case: (workflow, extra arguments, run twice?, signal sent once a job runs, or None)
    "diamond": ("diamond", ["-c1"], False, None),
    "dryrun": ("diamond", ["-c1", "-n"], False, None),
    "nothing": ("diamond", ["-c1"], True, None),
    "failing": ("failing", ["-c1"], False, None),
    "keepgoing": ("failing", ["-c1", "--keep-going"], False, None),
    "retry": ("retry", ["-c1"], False, None),
    "checkpoint": ("checkpoint", ["-c2", "all.txt"], False, None),
    "sigint": ("slow", ["-c1"], False, signal.SIGINT),
    # SIGTERM to the whole group, as a batch system's kill or `kill -- -PGID`: the job dies too.
    "sigterm": ("slow", ["-c1"], False, signal.SIGTERM),
    "missing": ("missing", ["-c1", "--latency-wait", "1"], False, None),
    "full": ("full", ["-c1"], False, None),
}


def capture(case: str, workdir: Path, plugin_path: Path) -> None:
    workflow, args, twice, interrupt = CASES[case]
    shutil.copytree(HERE / "workflows" / workflow, workdir)
    out = HERE / "fixtures" / f"{case}.jsonl"
    env = {**os.environ, "PYTHONPATH": str(plugin_path), "CAPTURE_FILE": str(workdir / "capture.jsonl")}
    command = [str(SNAKEMAKE), "--logger", "capture", *args]
    if twice:
        subprocess.run(command, cwd=workdir, env={**env, "CAPTURE_FILE": os.devnull}, capture_output=True)
    process = subprocess.Popen(command, cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    if interrupt:
        # Once a job runs: before the scheduler is up, SIGTERM kills Snakemake outright.
        while '"event": "shellcmd"' not in _read(workdir / "capture.jsonl") and process.poll() is None:
            time.sleep(0.1)
        time.sleep(1)  # the job's shell has started
        os.killpg(process.pid, interrupt)  # as Ctrl-C in a terminal, or a batch system: the whole group
    process.wait()
    # The paths of this machine become <workdir>.
    text = (workdir / "capture.jsonl").read_text().replace(str(workdir), "<workdir>")
    out.write_text(text)


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def main(cases: list[str]) -> None:
    (HERE / "fixtures").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as temporary:
        plugin = Path(temporary) / "plugin" / "snakemake_logger_plugin_capture"
        plugin.mkdir(parents=True)
        (plugin / "__init__.py").write_text(f"NOISE = {sorted(NOISE)!r}\n" + PLUGIN)
        for case in cases or CASES:
            capture(case, Path(temporary) / case, plugin.parent)
            print(case, sum(1 for _ in open(HERE / "fixtures" / f"{case}.jsonl")), "records")


if __name__ == "__main__":
    main(sys.argv[1:])
