"""What the appliance accepts: the domain of every value of ingest and the tracker.

A value accepted here can be stored in the event store AND projected into
the views: a value the views cannot hold would stop the projector at its
batch. So the bounds are the views' (docs/ingest.md, "What is accepted"):

- text is valid Unicode (no lone surrogate: PostgreSQL stores UTF-8) without
  NUL (PostgreSQL's text and jsonb refuse it), of a bounded length;
- whole numbers fit their columns (steps: PostgreSQL `integer`), numbers in
  JSON payloads are finite and within 64 bits when whole;
- JSON payloads are nested at most MAX_JSON_DEPTH deep (reading them back
  recurses once per level);
- times lie between EARLIEST_TIME and FUTURE_ALLOWANCE after now (an event
  dated in 9999 would keep its run from ever becoming stale), kept in UTC.

Every check takes the value and the name of its field, and raises
InvalidArgumentError with a message that starts with that name (ingest names
the event's field, the tracker its argument). Each `Domain` also carries its
JSON schema, which the OpenAPI document shows.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable
from uuid import UUID

from appliance.errors import InvalidArgumentError
from appliance.vocabulary import LOG_LEVELS

MAX_NAME_LENGTH = 1_000  # names, users, groups, ids, statuses: one line of a page
MAX_TEXT_LENGTH = 1_000_000  # messages, descriptions, errors
MAX_PATH_LENGTH = 4_096  # a file name (PATH_MAX on Linux)
MAX_LIST_LENGTH = 100_000  # files of a task, rules or edges of a run
INT32_MAX = 2**31 - 1  # PostgreSQL `integer`: steps_done, steps_total
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_JSON_DEPTH = 64
EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=timezone.utc)
# How far ahead of the server's clock an event's time may be: a source's clock may run fast.
FUTURE_ALLOWANCE = timedelta(days=1)


def refuse(what: str, problem: str) -> InvalidArgumentError:
    return InvalidArgumentError(f"{what}: {problem}")


# Text.


def text(value: Any, what: str, *, limit: int = MAX_TEXT_LENGTH) -> str:
    """A string PostgreSQL stores as given, not blank."""
    value = any_text(value, what, limit=limit)
    if not value.strip():
        raise refuse(what, "must not be empty")
    return value


def any_text(value: Any, what: str, *, limit: int = MAX_TEXT_LENGTH) -> str:
    """A string PostgreSQL stores as given, maybe blank."""
    if not isinstance(value, str):
        raise refuse(what, f"must be a string, not {_kind(value)}")
    if len(value) > limit:
        raise refuse(what, f"is {len(value)} characters long; the limit is {limit}")
    _storable(value, what)
    return value


def name(value: Any, what: str) -> str:
    return text(value, what, limit=MAX_NAME_LENGTH)


def optional(check: Callable[..., Any]) -> Callable[..., Any]:
    """`check`, but None passes as None."""

    def checked(value: Any, what: str) -> Any:
        return None if value is None else check(value, what)

    checked.__name__ = f"optional_{check.__name__}"
    return checked


def _storable(value: str, what: str) -> None:
    if "\x00" in value:
        raise refuse(what, "must not contain NUL characters")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as error:  # a lone surrogate, as os.fsdecode makes of a bad file name
            raise refuse(what, f"is not valid Unicode: a lone surrogate {value[error.start]!r} at "
                               f"character {error.start}; replace undecodable characters before sending") from None


# Numbers.


def count(value: Any, what: str, *, maximum: int = INT32_MAX) -> int:
    """A whole number from 0 to `maximum` (a view's `integer` column by default)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise refuse(what, f"must be a whole number, not {_kind(value)}")
    if value < 0:
        raise refuse(what, "must not be negative")
    if value > maximum:
        raise refuse(what, f"must be at most {maximum}")
    return value


def number(value: Any, what: str) -> int | float:
    """A finite number; a whole one within 64 bits."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise refuse(what, f"must be a number, not {_kind(value)}")
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise refuse(what, f"must lie between {INT64_MIN} and {INT64_MAX} when whole")
    elif not math.isfinite(value):
        raise refuse(what, "must be a finite number (PostgreSQL's JSON has no NaN or Infinity)")
    return value


def progress(value: Any, what: str) -> str | int | float:
    """A task's progress as its source says it: a short string ("50%") or a number."""
    if isinstance(value, str):
        return name(value, what)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise refuse(what, f"must be a string or a number, not {_kind(value)}")
    return number(value, what)


def job_id(value: Any, what: str) -> str | int:
    """An external (Slurm) job id: a string, or a whole number (kept one: BIOMERO's are ints)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return number(value, what)
    return name(value, what)


def name_or_whole(value: Any, what: str) -> str | int:
    """A name, or a whole number kept as one (BIOMERO's OMERO user and group ids, -1 when unknown)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return number(value, what)
    return name(value, what)


def text_or_whole(value: Any, what: str) -> str | int:
    """A text, maybe blank, or a whole number kept as one (BIOMERO once passes -1 as a description)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return number(value, what)
    return any_text(value, what)


# Lists and objects of the fields Snakemake's runs bring: files, plans, rule graphs, measurements.


def path(value: Any, what: str) -> str:
    """A file name, as its source prints it."""
    return text(value, what, limit=MAX_PATH_LENGTH)


def listed(check: Callable[[Any, str], Any]) -> Callable[[Any, str], list]:
    """A list (None for an empty one) of at most MAX_LIST_LENGTH values, each passing `check`."""

    def checked(value: Any, what: str) -> list:
        if value is None:
            return []
        if not isinstance(value, (list, tuple)):
            raise refuse(what, f"must be a list, not {_kind(value)}")
        if len(value) > MAX_LIST_LENGTH:
            raise refuse(what, f"has {len(value)} items; the limit is {MAX_LIST_LENGTH}")
        return [check(item, f"{what}[{index}]") for index, item in enumerate(value)]

    checked.__name__ = f"listed_{check.__name__}"
    return checked


def counts(value: Any, what: str) -> dict[str, int]:
    """An object of names to whole numbers, such as jobs per rule {"align": 12, "index": 1}."""
    if not isinstance(value, dict):
        raise refuse(what, f"must be a dict (a JSON object), not {_kind(value)}")
    return {name(key, what): count(number_, f"{what}[{key!r:.80}]") for key, number_ in value.items()}


def measurements(value: Any, what: str) -> dict[str, int | float | None]:
    """An object of names to finite numbers or None (not measured), such as {"wall_seconds": 1.5}."""
    if not isinstance(value, dict):
        raise refuse(what, f"must be a dict (a JSON object), not {_kind(value)}")
    return {name(key, what): None if figure is None else number(figure, f"{what}[{key!r:.80}]")
            for key, figure in value.items()}


def edges(value: Any, what: str) -> list[list[str]]:
    """[source, target] pairs of names, such as a rule graph's [["index", "align"]]."""

    def pair(edge: Any, where: str) -> list[str]:
        if not isinstance(edge, (list, tuple)) or len(edge) != 2:
            raise refuse(where, "must be a [source, target] pair of names")
        return [name(end, where) for end in edge]

    return listed(pair)(value, what)


def edges_within(nodes: list[str], pairs: list[list[str]], what: str = "edges") -> None:
    """Every end of every pair is one of `nodes`."""
    known = set(nodes)
    for pair_ in pairs:
        for end in pair_:
            if end not in known:
                raise refuse(what, f"{end!r:.80} is not one of the rules")


# Ids, levels.


def uuid(value: Any, what: str) -> UUID:
    if isinstance(value, UUID):
        return value
    if isinstance(value, str) and len(value) <= 100:
        try:
            return UUID(value)
        except ValueError:
            pass
    raise refuse(what, "must be a UUID")


def level(value: Any, what: str = "level") -> str:
    if not isinstance(value, str) or value.upper() not in LOG_LEVELS:
        shown = repr(value)[:40] if isinstance(value, str) else _kind(value)
        raise refuse(what, f"must be one of {', '.join(LOG_LEVELS)}, not {shown}")
    return value.upper()


# JSON payloads.


def json_value(value: Any, what: str) -> Any:
    """Any JSON value the views' jsonb stores as given and every reader can read back."""
    _check_json(value, what, 1)
    return value


def command_result(value: Any, what: str) -> Any:
    """A task's result: any JSON value, or a fabric (invoke) Result, stored as BIOMERO's ResultDict
    stores one (command, env, stdout, stderr) with its exit code (`exited`)."""
    if all(hasattr(value, field) for field in ("command", "env", "stdout", "stderr", "exited")) \
            and not isinstance(value, dict):
        value = {"command": value.command, "env": dict(value.env or {}), "stdout": value.stdout,
                 "stderr": value.stderr, "exited": value.exited}
    return json_value(value, what)


def json_object(value: Any, what: str) -> dict:
    """A JSON object; None for an empty one (the events declare these a dict)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise refuse(what, f"must be a dict (a JSON object) or None, not {_kind(value)}")
    return json_value(value, what)


def _check_json(value: Any, what: str, depth: int) -> None:
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        _storable(value, what)
    elif isinstance(value, float) and not math.isfinite(value):
        raise refuse(what, "must not contain NaN or Infinity (PostgreSQL's JSON has neither)")
    elif isinstance(value, (int, float)):
        number(value, what)
    elif isinstance(value, (list, tuple, dict)):
        if depth > MAX_JSON_DEPTH:
            raise refuse(what, f"is nested more than {MAX_JSON_DEPTH} deep")
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(value, dict):
                if not isinstance(key, str):
                    raise refuse(what, f"has a key that is not a string: {_kind(key)}")
                _storable(key, what)
            _check_json(item, what, depth + 1)
    else:
        raise refuse(what, f"cannot be stored as JSON: {_kind(value)}")


# Times.


def time(value: Any, what: str = "at") -> datetime:
    """An aware time within the window, in UTC (PostgreSQL takes offsets up to 15:59 only)."""
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise refuse(what, "must be a timezone-aware datetime")
    try:
        utc = value.astimezone(timezone.utc)
    except OverflowError:  # the UTC time falls before year 1 or after year 9999
        utc = None
    latest = datetime.now(timezone.utc) + FUTURE_ALLOWANCE
    if utc is None or not EARLIEST_TIME <= utc <= latest:
        raise refuse(what, f"must lie between {EARLIEST_TIME:%Y-%m-%d} and one day after now (UTC)")
    return utc


def iso_time(value: Any, what: str = "time") -> datetime:
    """An ISO 8601 string with its offset, within the window, in UTC."""
    if not isinstance(value, str):
        raise refuse(what, f"must be a string, not {_kind(value)}")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise refuse(what, "must be an ISO 8601 time such as 2024-05-01T12:00:00Z") from None
    if parsed.tzinfo is None:
        raise refuse(what, "must name its time zone (end it with Z or +00:00)")
    return time(parsed, what)


def optional_time(value: Any, what: str = "at") -> datetime | None:
    return None if value is None else time(value, what)


def shown(text: str) -> str:
    """A client's string as it is safe to echo in an answer or a log: itself when printable
    and storable, else its ASCII escape (a NUL or a lone surrogate in a JSON answer is
    more than some clients can read)."""
    if text.isprintable() and not any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        return text
    return ascii(text)


def _kind(value: Any) -> str:
    return "None" if value is None else type(value).__name__


# The domains ingest's fields are declared with, each with its JSON schema.


@dataclass(frozen=True)
class Domain:
    check: Callable[[Any, str], Any]
    schema: dict


def _string_schema(limit: int, *, blank: bool = False) -> dict:
    # JSON has no lone surrogates once decoded, so only NUL (and blankness) show in a pattern.
    pattern = r"^[^\u0000]*$" if blank else r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
    return {"type": "string", "minLength": 0 if blank else 1, "maxLength": limit, "pattern": pattern,
            "description": "valid Unicode (no lone surrogate), without NUL" + ("" if blank else ", not blank")}


UUID_DOMAIN = Domain(uuid, {"type": "string", "format": "uuid"})
NAME = Domain(name, _string_schema(MAX_NAME_LENGTH))
TEXT = Domain(text, _string_schema(MAX_TEXT_LENGTH))
ANY_TEXT = Domain(any_text, _string_schema(MAX_TEXT_LENGTH, blank=True))
OBJECT = Domain(json_object, {"type": "object", "description": f"JSON nested at most {MAX_JSON_DEPTH} deep, "
                                                               "whole numbers within 64 bits"})
ANY_JSON = Domain(json_value, {"description": f"any JSON nested at most {MAX_JSON_DEPTH} deep, "
                                              "whole numbers within 64 bits"})
COUNT = Domain(count, {"type": "integer", "minimum": 0, "maximum": INT32_MAX})
_INTEGER_SCHEMA = {"type": "integer", "minimum": INT64_MIN, "maximum": INT64_MAX}
# A fraction: any finite double (a JSON number beyond one is Infinity to Python, and refused).
_FRACTION_SCHEMA = {"type": "number", "not": {"type": "integer"},
                    "minimum": -sys.float_info.max, "maximum": sys.float_info.max}
PROGRESS = Domain(progress, {"anyOf": [_string_schema(MAX_NAME_LENGTH), _INTEGER_SCHEMA, _FRACTION_SCHEMA]})
JOB_ID = Domain(job_id, {"anyOf": [_string_schema(MAX_NAME_LENGTH),
                                   {"type": "integer", "minimum": INT64_MIN, "maximum": INT64_MAX}]})
LEVEL = Domain(level, {"type": "string", "pattern": "^(" + "|".join(
    "".join(f"[{c.upper()}{c.lower()}]" for c in word) for word in LOG_LEVELS) + ")$",
    "description": f"one of {', '.join(LOG_LEVELS)} in any case; stored upper-case"})
_NAMES_SCHEMA = {"type": "array", "maxItems": MAX_LIST_LENGTH, "items": _string_schema(MAX_NAME_LENGTH)}
NAMES = Domain(listed(name), _NAMES_SCHEMA)
PATH = Domain(path, _string_schema(MAX_PATH_LENGTH))
PATHS = Domain(listed(path), {"type": "array", "maxItems": MAX_LIST_LENGTH, "items": _string_schema(MAX_PATH_LENGTH)})
COUNTS = Domain(counts, {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0,
                                                                     "maximum": INT32_MAX}})
MEASUREMENTS = Domain(measurements, {"type": "object", "additionalProperties": {
    "type": "number", "nullable": True, "description": "finite; whole ones within 64 bits; null: not measured"}})
EDGES = Domain(edges, {"type": "array", "maxItems": MAX_LIST_LENGTH, "items": {
    "type": "array", "items": _string_schema(MAX_NAME_LENGTH), "minItems": 2, "maxItems": 2}})
TIME = Domain(iso_time, {"type": "string", "format": "date-time",
                         "description": "with its offset; from 1970-01-01 to one day after the server's now"})
