"""Cron schedules as Kubernetes reads a CronJob's ``spec.schedule`` and ``spec.timeZone``.

Kubernetes parses schedules with robfig/cron v3's ``ParseStandard``: five fields (minute, hour,
day of month, month, day of week; names ``jan``-``dec`` and ``sun``-``sat``; ``*`` and ``?``;
ranges, steps, lists), the descriptors ``@yearly``/``@annually``, ``@monthly``, ``@weekly``,
``@daily``/``@midnight``, ``@hourly`` and ``@every <duration>``, and an optional
``TZ=<zone>``/``CRON_TZ=<zone>`` prefix. The apiserver rejects anything else with robfig's
error text, so ``parse_standard`` ports that grammar and its messages (croniter accepts a
superset: a seconds field, ``L``/``W``/``#``, ``7`` for Sunday, hashed ``H``, and words its
errors differently). When the next activation is computed, croniter (a well-kept library)
walks the calendar, time zones and DST included: the parsed fields are handed to it as
explicit value lists, with ``*`` where robfig marks a field unrestricted, so its day-of-month
/ day-of-week rule (either field restricted: OR) is robfig's. ``@every`` is a constant delay
(robfig's ``ConstantDelaySchedule``). Zones are IANA names through ``zoneinfo``
(``load_location``: Go's ``time.LoadLocation``).

Users: the apiserver's CronJob validation and the CronJob controller.

API:
    parse_standard(spec, tz=None) -> Schedule     # raises CronError(message)
    Schedule.next(after) -> datetime | None       # strictly after; None: none within 5 years
    load_location(name) -> tzinfo                 # raises CronError("unknown time zone X")
"""

from __future__ import annotations

import datetime as _dt
import re
import zoneinfo
from dataclasses import dataclass
from typing import Sequence

from croniter import croniter
from croniter.croniter import CroniterBadDateError

UTC = _dt.timezone.utc


class CronError(ValueError):
    """A schedule or time zone Kubernetes would reject; the message is robfig/cron's (or Go's)."""


# -- fields (robfig/cron v3 parser.go) ---------------------------------------------------------------

@dataclass(frozen=True)
class _Bounds:
    low: int
    high: int
    names: dict[str, int] | None = None


_MONTHS = {m: i + 1 for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
                                            "nov", "dec"))}
_DAYS = {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
_FIELDS = (_Bounds(0, 59), _Bounds(0, 23), _Bounds(1, 31), _Bounds(1, 12, _MONTHS), _Bounds(0, 6, _DAYS))
_DESCRIPTORS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}
_INT = re.compile(r"^[+-]?[0-9]+$")
_INT64 = 2**63


def _go_list(fields: Sequence[str]) -> str:
    return "[" + " ".join(fields) + "]"


def _must_parse_int(expr: str) -> int:
    if not _INT.match(expr):
        raise CronError(f'failed to parse int from {expr}: strconv.Atoi: parsing "{expr}": invalid syntax')
    num = int(expr)
    if not -_INT64 <= num < _INT64:
        raise CronError(f'failed to parse int from {expr}: strconv.Atoi: parsing "{expr}": value out of range')
    if num < 0:
        raise CronError(f"negative number ({num}) not allowed: {expr}")
    return num


def _int_or_name(expr: str, names: dict[str, int] | None) -> int:
    if names is not None and expr.lower() in names:
        return names[expr.lower()]
    return _must_parse_int(expr)


def _range(expr: str, b: _Bounds) -> tuple[set[int], bool]:
    """(values, star) of one comma-separated part: robfig's ``getRange``."""
    range_and_step = expr.split("/")
    low_and_high = range_and_step[0].split("-")
    single = len(low_and_high) == 1
    star = False
    if low_and_high[0] in ("*", "?"):
        start, end, star = b.low, b.high, True
    else:
        start = _int_or_name(low_and_high[0], b.names)
        if len(low_and_high) == 1:
            end = start
        elif len(low_and_high) == 2:
            end = _int_or_name(low_and_high[1], b.names)
        else:
            raise CronError(f"too many hyphens: {expr}")
    if len(range_and_step) == 1:
        step = 1
    elif len(range_and_step) == 2:
        step = _must_parse_int(range_and_step[1])
        if single:  # "N/step" means "N-max/step"
            end = b.high
        if step > 1:
            star = False
    else:
        raise CronError(f"too many slashes: {expr}")
    if start < b.low:
        raise CronError(f"beginning of range ({start}) below minimum ({b.low}): {expr}")
    if end > b.high:
        raise CronError(f"end of range ({end}) above maximum ({b.high}): {expr}")
    if start > end:
        raise CronError(f"beginning of range ({start}) beyond end of range ({end}): {expr}")
    if step == 0:
        raise CronError(f"step of range should be a positive number: {expr}")
    return set(range(start, end + 1, step)), star


def _field(field: str, b: _Bounds) -> tuple[set[int], bool]:
    values: set[int] = set()
    star = False
    for part in (p for p in field.split(",") if p):
        v, s = _range(part, b)
        values |= v
        star = star or s
    return values, star


# -- Go durations (for @every) -----------------------------------------------------------------------

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)([^0-9.]*)")


def parse_go_duration(text: str) -> float:
    """Go's ``time.ParseDuration`` (seconds; ``1h30m``, ``1.5h``, ``90s``, ``-5m``), with its errors."""
    s = text
    sign = 1.0
    if s[:1] in ("-", "+"):
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    if s == "0":
        return 0.0
    if not s:
        raise CronError(f'time: invalid duration "{text}"')
    total = 0.0
    while s:
        m = _DURATION_PART.match(s)
        number, unit = (m.group(1), m.group(2)) if m else ("", "")
        if not number or number == ".":
            raise CronError(f'time: invalid duration "{text}"')
        if not unit:
            raise CronError(f'time: missing unit in duration "{text}"')
        # the unit runs until the next digit or dot
        if unit not in _UNITS:
            raise CronError(f'time: unknown unit "{unit}" in duration "{text}"')
        total += float(number) * _UNITS[unit]
        s = s[m.end():] if m else ""
    return sign * total


# -- time zones --------------------------------------------------------------------------------------

def local_zone() -> _dt.tzinfo:
    """This process's local time zone (what Kubernetes uses for a schedule without timeZone)."""
    return _dt.datetime.now().astimezone().tzinfo or UTC


def load_location(name: str) -> _dt.tzinfo:
    """Go's ``time.LoadLocation``: ``""``/``UTC`` is UTC, ``Local`` the local zone, else an IANA
    zone (``CronError("unknown time zone X")`` when there is none)."""
    if name in ("", "UTC"):
        return UTC
    if name == "Local":
        return local_zone()
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise CronError(f"unknown time zone {name}") from None


# -- schedules ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Schedule:
    """A parsed schedule: a croniter expression over explicit values, or a constant delay."""

    expression: str  # five fields for croniter ("" for @every)
    every: float  # seconds between activations of an @every schedule (0: not one)
    tz: _dt.tzinfo

    def next(self, after: _dt.datetime) -> _dt.datetime | None:
        """The first activation strictly after ``after`` (an aware datetime), in the schedule's
        zone; None when there is none within five years (robfig's zero time: "31 2" and the like)."""
        if self.every:
            # robfig's ConstantDelaySchedule: whole seconds, from ``after`` truncated to the second
            return after.replace(microsecond=0) + _dt.timedelta(seconds=self.every)
        start = after.astimezone(self.tz)
        try:
            nxt = croniter(self.expression, start, day_or=True, max_years_between_matches=5).get_next(_dt.datetime)
        except CroniterBadDateError:
            return None
        return nxt if nxt.year - start.year <= 5 else None


def _list(values: set[int], star: bool) -> str:
    return "*" if star else ",".join(str(v) for v in sorted(values))


def parse_standard(spec: str, tz: _dt.tzinfo | None = None) -> Schedule:
    """robfig/cron v3 ``ParseStandard`` (see the module docstring). ``tz`` is the zone of a
    schedule without a ``TZ=`` prefix (default: this process's local zone, as Kubernetes)."""
    if not spec:
        raise CronError("empty spec string")
    loc = tz if tz is not None else local_zone()
    if spec.startswith(("TZ=", "CRON_TZ=")):
        i, eq = spec.find(" "), spec.find("=")
        zone = spec[eq + 1:i] if i >= 0 else spec[eq + 1:]
        try:
            loc = load_location(zone)
        except CronError as e:
            raise CronError(f"provided bad location {zone}: {e}") from None
        spec = spec[i:].strip() if i >= 0 else ""
    if spec.startswith("@"):
        expression = _DESCRIPTORS.get(spec)
        if expression is not None:
            return parse_standard(expression, loc)
        if spec.startswith("@every "):
            try:
                delay = parse_go_duration(spec[len("@every "):])
            except CronError as e:
                raise CronError(f"failed to parse duration {spec}: {e}") from None
            delay = max(float(int(delay)), 1.0)  # at least a second, in whole seconds
            return Schedule("", delay, loc)
        raise CronError(f"unrecognized descriptor: {spec}")
    fields = spec.split()
    if len(fields) != 5:
        raise CronError(f"expected exactly 5 fields, found {len(fields)}: {_go_list(fields)}")
    parsed = [_field(f, b) for f, b in zip(fields, _FIELDS)]
    return Schedule(" ".join(_list(v, s) for v, s in parsed), 0.0, loc)
