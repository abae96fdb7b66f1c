"""appliance/validation.py on its own: every value is refused naming its field, or is storable.

"Storable" is checked without a database here (UTF-8 without NUL, JSON that
reads back, numbers within their columns); tests/integration/test_accepted_domain.py
sends the same edges through ingest, the tracker and the projector.
"""

import json
import math
from datetime import datetime, timedelta, timezone
from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance import validation as valid
from appliance.errors import InvalidArgumentError
from appliance.vocabulary import LOG_LEVELS

EDGE_INTEGERS = st.sampled_from([0, -1, 2**31 - 1, 2**31, 2**53, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1,
                                 10**400, True, False])
EDGE_FLOATS = st.sampled_from([0.0, -0.0, 1e308, -1e308, 1.7976931348623157e308, 5e-324, math.inf, -math.inf,
                               math.nan])
ANY_TEXT = st.text(alphabet=st.characters(codec=None), max_size=40) | st.sampled_from(
    ["\ud800", "a\udcffb", "\x00", "   ", "", "x" * 1001, "\U0001f600", "\u202e"])
SCALARS = st.none() | st.booleans() | st.integers() | EDGE_INTEGERS | st.floats() | EDGE_FLOATS | ANY_TEXT
JSON_LIKE = st.recursive(SCALARS, lambda children: st.lists(children, max_size=3)
                         | st.dictionaries(ANY_TEXT | st.integers(), children, max_size=3), max_leaves=10)
CHECKS = [valid.name, valid.text, valid.any_text, valid.count, valid.number, valid.progress, valid.job_id,
          valid.uuid, valid.level, valid.json_value, valid.json_object, valid.time, valid.iso_time]


def nested(depth: int):
    value = 1
    for _ in range(depth):  # depth arrays, one inside the other
        value = [value]
    return value


def assert_storable(value):
    if isinstance(value, str):
        assert "\x00" not in value
        value.encode("utf-8")  # PostgreSQL stores UTF-8: a lone surrogate would raise here
    elif isinstance(value, bool) or value is None:
        pass
    elif isinstance(value, int):
        assert -(2**63) <= value < 2**63
    elif isinstance(value, float):
        assert math.isfinite(value)
    elif isinstance(value, (list, tuple, dict)):
        text = json.dumps(value, allow_nan=False)
        assert json.loads(text) is not None  # reads back, however deep it is allowed to be
        for item in (value.items() if isinstance(value, dict) else enumerate(value)):
            assert_storable(item[0]) if isinstance(value, dict) else None
            assert_storable(item[1])


@settings(max_examples=400, deadline=None)
@given(check=st.sampled_from(CHECKS), value=JSON_LIKE | st.datetimes(timezones=st.timezones() | st.none()))
def test_every_value_is_refused_naming_its_field_or_accepted_storable(check, value):
    try:
        accepted = check(value, "the_field")
    except InvalidArgumentError as error:
        assert str(error).startswith("the_field: ")
        return
    if isinstance(accepted, datetime):
        assert accepted.utcoffset() == timedelta(0)
        assert valid.EARLIEST_TIME <= accepted <= datetime.now(timezone.utc) + valid.FUTURE_ALLOWANCE
    elif not isinstance(accepted, type(uuid4())):
        assert_storable(accepted)


@pytest.mark.parametrize("value", ["\ud800", "sample_\udcff.fastq", "a\x00b", "", "  ", "x" * 1001, 7, None])
def test_names_refuse_what_postgresql_cannot_store_or_show(value):
    with pytest.raises(InvalidArgumentError, match="^name: "):
        valid.name(value, "name")


def test_a_lone_surrogate_is_named_with_its_place():
    with pytest.raises(InvalidArgumentError, match=r"^message: is not valid Unicode: a lone surrogate '\\udcff' at character 7"):
        valid.text("sample_\udcff.fastq", "message")


@pytest.mark.parametrize("value, accepted", [(0, True), (2**31 - 1, True), (2**31, False), (-1, False),
                                             (1.0, False), (True, False)])
def test_counts_fit_postgresql_integer(value, accepted):
    if accepted:
        assert valid.count(value, "done") == value
    else:
        with pytest.raises(InvalidArgumentError, match="^done: "):
            valid.count(value, "done")


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 10**400, math.inf, math.nan, True, [], {}])
def test_progress_numbers_are_finite_and_within_64_bits(value):
    with pytest.raises(InvalidArgumentError, match="^progress: "):
        valid.progress(value, "progress")


@pytest.mark.parametrize("value", [1e308, -1e308, 2**63 - 1, -(2**63), 0.5, "50%"])
def test_progress_at_the_edges_is_accepted(value):
    assert valid.progress(value, "progress") == value


def test_json_nests_at_most_the_documented_depth():
    assert valid.json_value(nested(valid.MAX_JSON_DEPTH), "result") == nested(valid.MAX_JSON_DEPTH)
    with pytest.raises(InvalidArgumentError, match="^result: is nested more than 64 deep"):
        valid.json_value(nested(valid.MAX_JSON_DEPTH + 1), "result")


@pytest.mark.parametrize("value", [{"a": math.nan}, {"k\x00": 1}, {"\udcff": 1}, {1: "int key"}, [2**64],
                                   {"x": object()}, {"s": {1, 2}}])
def test_json_payloads_refuse_what_jsonb_cannot_hold(value):
    with pytest.raises(InvalidArgumentError, match="^params: "):
        valid.json_object(value, "params")


@pytest.mark.parametrize("time", [
    "1969-12-31T23:59:59Z", "9999-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00", "9999-12-31T23:00:00-05:00",
    (datetime.now(timezone.utc) + timedelta(days=2)).isoformat(), "2024-05-01T12:00:00", "yesterday", 12,
])
def test_times_outside_the_window_are_refused(time):
    with pytest.raises(InvalidArgumentError, match="^time: "):
        valid.iso_time(time, "time")


@pytest.mark.parametrize("time, utc", [
    ("2024-01-01T00:00:00+20:00", datetime(2023, 12, 31, 4, tzinfo=timezone.utc)),
    ("1970-01-01T00:00:00Z", datetime(1970, 1, 1, tzinfo=timezone.utc)),
])
def test_times_in_the_window_are_kept_in_utc_whatever_their_offset(time, utc):
    accepted = valid.iso_time(time, "time")
    assert accepted == utc and accepted.utcoffset() == timedelta(0)


def test_levels_are_the_vocabulary_in_any_case():
    assert [valid.level(name.lower()) for name in LOG_LEVELS] == list(LOG_LEVELS)
    with pytest.raises(InvalidArgumentError, match="^level: must be one of DEBUG, INFO"):
        valid.level("LOUD")


def test_the_level_schema_matches_exactly_what_the_check_accepts():
    import re

    pattern = re.compile(valid.LEVEL.schema["pattern"])
    for word in ["info", "INFO", "Info", "iNfO", "LOUD", "INFOS", ""]:
        accepted = word.upper() in LOG_LEVELS
        assert bool(pattern.fullmatch(word)) == accepted


def test_the_errors_are_importable_from_the_package_as_the_readme_says():
    from appliance import InvalidArgumentError as from_package
    from appliance import UnknownIdError

    assert from_package is InvalidArgumentError and issubclass(UnknownIdError, LookupError)
