"""The figures of a Snakemake benchmark file, as a task's measured resource usage.

Snakemake writes one row per repeat (`benchmark: repeat("b.tsv", 3)`) as TSV
with a header, or as JSON lines when the name ends in .jsonl. Figures are
named in the appliance's terms, with their unit; several repeats give their
mean. Snakemake writes "-" (NA in JSON) where it measured nothing, such as
the memory of a job too short to be sampled: that figure is left out.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

# Snakemake's column -> the figure recorded (its unit in its name).
FIGURES = {
    "s": "wall_seconds", "cpu_time": "cpu_seconds", "max_rss": "max_rss_mb", "max_vms": "max_vms_mb",
    "max_uss": "max_uss_mb", "max_pss": "max_pss_mb", "io_in": "io_in_mb", "io_out": "io_out_mb",
    "mean_load": "mean_load", "cpu_usage": "cpu_usage", "input_size_mb": "input_size_mb", "threads": "threads",
}
MAX_BYTES = 1_000_000  # a benchmark file is a few lines; anything larger is not one


class BenchmarkError(ValueError):
    """The file is missing or is not a benchmark file; the message says which."""


def read_usage(path: Path) -> dict:
    """{"wall_seconds": 1.02, "max_rss_mb": 3.4, ..., "repeats": 1}; BenchmarkError if unreadable."""
    try:
        if path.stat().st_size > MAX_BYTES:
            raise BenchmarkError(f"{path} is larger than a benchmark file ({MAX_BYTES} bytes)")
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        raise BenchmarkError(f"{path} cannot be read: {error.strerror or error}") from None
    try:
        rows = _json_rows(text) if path.name.endswith(".jsonl") else _tsv_rows(text)
    except ValueError:
        raise BenchmarkError(f"{path} is not a Snakemake benchmark file (a line is not JSON)") from None
    if not rows or not any(column in FIGURES for column in rows[0]):
        raise BenchmarkError(f"{path} is not a Snakemake benchmark file (no rows with its columns)")
    usage = {}
    for column, figure in FIGURES.items():
        values = [value for value in (_number(row.get(column)) for row in rows) if value is not None]
        if values:
            usage[figure] = round(sum(values) / len(values), 6)
    usage["repeats"] = len(rows)
    return usage


def _tsv_rows(text: str) -> list[dict]:
    lines = [line.split("\t") for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        return []
    header = lines[0]
    return [dict(zip(header, line)) for line in lines[1:]]


def _json_rows(text: str) -> list[dict]:
    rows = []
    for line in text.splitlines():
        if line.strip():
            row = json.loads(line)
            if isinstance(row, dict):
                rows.append(row)
    return rows


def _number(value) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None  # "-", "NA", null: not measured
    return number if math.isfinite(number) else None
