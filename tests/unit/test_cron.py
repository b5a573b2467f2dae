"""Cron schedules as Kubernetes reads them (robfig/cron v3 ParseStandard): accepted forms and
their next activation, rejected ones with robfig's messages, Go durations, time zones."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from controlplane.machinery.cron import UTC, CronError, load_location, parse_go_duration, parse_standard

MON = dt.datetime(2026, 1, 5, 10, 0, 30, tzinfo=UTC)  # a Monday, 10:00:30 UTC


@pytest.mark.parametrize("spec,after,want", [
    ("*/1 * * * *", MON, "2026-01-05T10:01:00+00:00"),
    ("* * * * *", MON.replace(second=0), "2026-01-05T10:01:00+00:00"),  # strictly after
    ("*/15 * * * *", MON, "2026-01-05T10:15:00+00:00"),
    ("5/15 * * * *", MON, "2026-01-05T10:05:00+00:00"),  # N/step is N-59/step
    ("@hourly", MON, "2026-01-05T11:00:00+00:00"),
    ("@daily", MON, "2026-01-06T00:00:00+00:00"),
    ("@midnight", MON, "2026-01-06T00:00:00+00:00"),
    ("@weekly", MON, "2026-01-11T00:00:00+00:00"),  # Sunday
    ("@monthly", MON, "2026-02-01T00:00:00+00:00"),
    ("@yearly", MON, "2027-01-01T00:00:00+00:00"),
    ("@annually", MON, "2027-01-01T00:00:00+00:00"),
    ("@every 90s", MON, "2026-01-05T10:02:00+00:00"),  # constant delay from the whole second
    ("@every 1h30m", MON, "2026-01-05T11:30:30+00:00"),
    ("0 9 * JAN-MAR mon-fri", MON, "2026-01-06T09:00:00+00:00"),
    ("0 0 * * SUN", MON, "2026-01-11T00:00:00+00:00"),
    ("0 0 ? * 1", MON, "2026-01-12T00:00:00+00:00"),
    ("0 0 */2 * 1", MON, "2026-01-07T00:00:00+00:00"),  # both day fields restricted: either matches
    ("0 0 1-31 * 1", MON, "2026-01-06T00:00:00+00:00"),  # (1-31 is not "*": every day)
    ("0 0 * * 1", MON, "2026-01-12T00:00:00+00:00"),  # "*" day of month: Mondays only
    ("30 6-16/4 * * 1-5", MON, "2026-01-05T10:30:00+00:00"),
    ("0 0 29 2 *", MON, "2028-02-29T00:00:00+00:00"),
], ids=lambda v: v if isinstance(v, str) and not v.startswith("2") else None)
def test_next_activation(spec: str, after: dt.datetime, want: str) -> None:
    assert parse_standard(spec, UTC).next(after).isoformat() == want


@pytest.mark.parametrize("spec,tz,want", [
    ("0 9 * * *", "Europe/Berlin", "2026-01-06T09:00:00+01:00"),
    ("0 9 * * *", "America/New_York", "2026-01-05T09:00:00-05:00"),  # 14:00 UTC, still ahead
    ("TZ=Asia/Tokyo 0 9 * * *", "UTC", "2026-01-06T09:00:00+09:00"),
    ("CRON_TZ=Asia/Tokyo 0 9 * * *", "UTC", "2026-01-06T09:00:00+09:00"),
])
def test_time_zones(spec: str, tz: str, want: str) -> None:
    assert parse_standard(spec, load_location(tz)).next(MON).isoformat() == want


def test_dst_spring_forward_skips_the_missing_hour() -> None:
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    before = dt.datetime(2026, 3, 28, 12, 0, tzinfo=berlin)
    nxt = parse_standard("30 2 * * *", berlin).next(before)  # 02:30 does not exist on 2026-03-29
    assert nxt is not None and nxt > before and nxt.utcoffset() == dt.timedelta(hours=2)


def test_schedule_that_never_fires_has_no_next() -> None:
    assert parse_standard("0 0 31 2 *", UTC).next(MON) is None


@pytest.mark.parametrize("spec,message", [
    ("", "empty spec string"),
    ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
    ("bad", "expected exactly 5 fields, found 1: [bad]"),
    ("0 * * * * *", "expected exactly 5 fields, found 6: [0 * * * * *]"),
    ("61 * * * *", "end of range (61) above maximum (59): 61"),
    ("* 24 * * *", "end of range (24) above maximum (23): 24"),
    ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
    ("* * * 13 *", "end of range (13) above maximum (12): 13"),
    ("* * * * 7", "end of range (7) above maximum (6): 7"),
    ("5-1 * * * *", "beginning of range (5) beyond end of range (1): 5-1"),
    ("*/0 * * * *", "step of range should be a positive number: */0"),
    ("1-2-3 * * * *", "too many hyphens: 1-2-3"),
    ("1/2/3 * * * *", "too many slashes: 1/2/3"),
    ("x * * * *", 'failed to parse int from x: strconv.Atoi: parsing "x": invalid syntax'),
    ("L * * * *", 'failed to parse int from L: strconv.Atoi: parsing "L": invalid syntax'),
    ("@foo", "unrecognized descriptor: @foo"),
    ("@every 1d", 'failed to parse duration @every 1d: time: unknown unit "d" in duration "1d"'),
    ("@every 10", 'failed to parse duration @every 10: time: missing unit in duration "10"'),
    ("TZ=Nowhere/Else 0 0 * * *", "provided bad location Nowhere/Else: unknown time zone Nowhere/Else"),
])
def test_rejected_with_robfig_messages(spec: str, message: str) -> None:
    with pytest.raises(CronError) as e:
        parse_standard(spec, UTC)
    assert str(e.value) == message


@pytest.mark.parametrize("text,seconds", [
    ("90s", 90.0), ("1h30m", 5400.0), ("1.5h", 5400.0), ("500ms", 0.5), ("-2m", -120.0), ("0", 0.0),
])
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == pytest.approx(seconds)


def test_every_is_at_least_a_second_and_whole_seconds() -> None:
    assert parse_standard("@every 500ms", UTC).every == 1.0
    assert parse_standard("@every 2.5s", UTC).every == 2.0


@pytest.mark.parametrize("name,ok", [("", True), ("UTC", True), ("Europe/Berlin", True), ("Local", True),
                                     ("Mars/Olympus", False), ("europe/nowhere", False)])
def test_load_location(name: str, ok: bool) -> None:
    if ok:
        assert load_location(name) is not None
    else:
        with pytest.raises(CronError, match=f"unknown time zone {name}"):
            load_location(name)
