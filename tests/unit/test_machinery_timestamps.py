"""RFC 3339 formatting and parsing (``controlplane.machinery.timestamps``), table-driven."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from controlplane.machinery import timestamps as ts

T = 1704164645.25  # 2024-01-02T03:04:05.25Z


@pytest.mark.parametrize("fn,t,want", [
    (ts.rfc3339, T, "2024-01-02T03:04:05Z"),
    (ts.rfc3339, 0.0, "1970-01-01T00:00:00Z"),
    (ts.micro_time, T, "2024-01-02T03:04:05.250000Z"),
    (ts.micro_time, 1704164645.0, "2024-01-02T03:04:05.000000Z"),
    (ts.rfc3339nano, T, "2024-01-02T03:04:05.250000000Z"),
    (ts.rfc3339_or_none, T, "2024-01-02T03:04:05Z"),
    (ts.rfc3339_or_none, None, None),
], ids=["seconds", "epoch", "micro", "micro-whole", "nano", "or-none", "none"])
def test_format(fn, t, want):
    assert fn(t) == want


@pytest.mark.parametrize("text,want", [
    ("2024-01-02T03:04:05.123456789Z", 1704164645.123456789),
    ("2024-01-02T03:04:05Z", 1704164645.0),
    ("2024-01-02T03:04:05z", 1704164645.0),
    ("2024-01-02T04:04:05+01:00", 1704164645.0),
    ("2024-01-02T02:04:05.5-01:00", 1704164645.5),
    ("2024-01-02T03:04:05.5+00:00", 1704164645.5),
    ("2024-01-02T03:04:05", 1704164645.0),
], ids=["nanos", "zulu", "lower-z", "plus-offset", "minus-offset-frac", "frac-offset", "no-offset-utc"])
def test_parse_time(text, want):
    assert ts.parse_time(text) == pytest.approx(want, abs=1e-9)


@pytest.mark.parametrize("text", ["", "yesterday", "2024-01-02", "2024-01-02T03:04:05.Z", "2024-13-02T03:04:05Z"],
                         ids=["empty", "word", "date-only", "empty-fraction", "bad-month"])
def test_parse_time_rejects(text):
    with pytest.raises(ValueError):
        ts.parse_time(text)
    assert ts.parse_time_or_none(text) is None


@pytest.mark.parametrize("fn", [ts.rfc3339, ts.micro_time, ts.rfc3339nano])
def test_round_trip(fn):
    assert ts.parse_time(fn(T)) == pytest.approx(T if fn is not ts.rfc3339 else int(T), abs=1e-6)


def test_now_rfc3339_is_current():
    now = datetime.now(timezone.utc).timestamp()
    assert abs(ts.parse_time(ts.now_rfc3339()) - now) <= 1.5


@pytest.mark.parametrize("value,want", [
    ("2024-01-02T03:04:05Z", datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)),
    (None, None), ("", None), ("nope", None), (17, None),
], ids=["ok", "none", "empty", "bad", "not-a-string"])
def test_parse_datetime_or_none(value, want):
    assert ts.parse_datetime_or_none(value) == want


@pytest.mark.parametrize("text,want", [
    ("15s", 15.0), ("15.004211s", 15.004211), ("1.s", 1.0), (".5s", 0.5), ("-1.5s", -1.5), ("+2s", 2.0),
    ("1m30s", 90.0), ("500ms", 0.5), ("2.5h", 9000.0), ("10us", 1e-5), ("7", 7.0), (" 3s ", 3.0),
])
def test_parse_duration_plain_seconds_and_go_forms(text: str, want: float) -> None:
    """Plain seconds take a path without the regular expression; every form reads the same."""
    assert ts.parse_duration(text) == pytest.approx(want)


@pytest.mark.parametrize("bad", ["", "s", "1.2.3s", "1 s", "1x", "5_0s", "1e3s"])
def test_parse_duration_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        ts.parse_duration(bad)
