"""RFC 3339 timestamps as the Kubernetes API writes them, in one place (apimachinery's
``metav1.Time``, ``metav1.MicroTime`` and the CRI log's RFC3339Nano).

- ``rfc3339(t)`` / ``now_rfc3339()``: ``2024-01-02T03:04:05Z`` (second precision, UTC): object
  timestamps, conditions, taints' ``timeAdded``. ``now_rfc3339`` formats once per second;
  ``rfc3339_or_none`` keeps a missing time missing.
- ``micro_time(t)``: ``2024-01-02T03:04:05.123456Z``: Lease ``renewTime``/``acquireTime``,
  events.k8s.io ``eventTime``.
- ``rfc3339nano(t)``: ``2024-01-02T03:04:05.123456789Z``: container log lines.
- ``parse_time(s)`` reads any of them (and numeric offsets) to seconds since the epoch, keeping
  nanoseconds (``datetime`` keeps only microseconds); ``parse_time_or_none`` is the lenient
  form for fields that may be missing or malformed (None instead of ``ValueError``);
  ``parse_datetime_or_none`` gives an aware ``datetime`` (table printers' ages).

Used by the controllers, the node agent, the client (leases, events), the runtime's log files
and the apiserver; pure, no imports of other layers.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone
from functools import lru_cache

_now_cache: tuple[int, str] = (-1, "")


def rfc3339(t: float) -> str:
    """``t`` (seconds since the epoch) at second precision, UTC."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def rfc3339_or_none(t: float | None) -> str | None:
    """``rfc3339`` for optional times (a container that has not finished: None stays None)."""
    return None if t is None else rfc3339(t)


def now_rfc3339() -> str:
    """UTC now at second precision, formatted once per second (hot paths: every write)."""
    global _now_cache
    sec = int(time.time())
    if _now_cache[0] != sec:
        _now_cache = (sec, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(sec)))
    return _now_cache[1]


def _split(t: float | None) -> tuple[int, float]:
    t = time.time() if t is None else t
    sec = int(t // 1)
    return sec, t - sec


_micro_second: list = [None, ""]  # (second, "YYYY-MM-DDTHH:MM:SS.") of the last micro_time


def micro_time(t: float | None = None) -> str:
    """``metav1.MicroTime``: six fractional digits (the date part formatted once a second:
    audit events take two per request)."""
    sec, frac = _split(t)
    micros = min(int(frac * 1e6), 999_999)
    if _micro_second[0] != sec:
        _micro_second[0], _micro_second[1] = sec, time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(sec))
    return "%s%06dZ" % (_micro_second[1], micros)


def rfc3339nano(t: float | None = None) -> str:
    """RFC3339Nano with all nine fractional digits (the CRI log format writes them all)."""
    sec, frac = _split(t)
    nanos = min(int(frac * 1e9), 999_999_999)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{nanos:09d}Z"


def parse_time(s: str) -> float:
    """An RFC 3339 timestamp (fraction up to nanoseconds, ``Z`` or an offset; no offset means
    UTC) to seconds since the epoch. Raises ``ValueError`` for anything else."""
    s = s.strip()
    if s[-1:] in ("Z", "z"):
        s = s[:-1] + "+00:00"
    main, frac, rest = s, "", ""
    if "." in s:
        main, _, tail = s.partition(".")
        i = 0
        while i < len(tail) and tail[i].isdigit():
            i += 1
        frac, rest = tail[:i], tail[i:]
        if not frac:
            raise ValueError(f"invalid RFC 3339 time {s!r}: empty fraction")
    else:
        for sep in ("+", "-"):
            idx = main.rfind(sep)
            if idx > 10:
                main, rest = main[:idx], main[idx:]
                break
    if len(main) < 19 or main[10] not in "Tt ":
        raise ValueError(f"invalid RFC 3339 time {s!r}")
    dt = datetime.fromisoformat(main[:10] + "T" + main[11:] + (rest or "+00:00"))
    return dt.timestamp() + (float("0." + frac) if frac else 0.0)


def parse_time_or_none(s: str | None) -> float | None:
    """``parse_time`` for optional fields: None for None, "" or a malformed value."""
    if not s or not isinstance(s, str):
        return None
    try:
        return parse_time(s)
    except ValueError:
        return None


def parse_datetime_or_none(value: object) -> datetime | None:
    """An aware UTC ``datetime`` of an RFC 3339 string (None when missing or malformed)."""
    if not isinstance(value, str) or not value:
        return None
    return _parse_datetime(value)


@lru_cache(maxsize=8192)  # big lists share few distinct timestamps
def _parse_datetime(value: str) -> datetime | None:
    t = parse_time_or_none(value)
    return None if t is None else datetime.fromtimestamp(t, timezone.utc)


_DURATION_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ns": 1e-9}
_DURATION_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(text: str) -> float:
    """A Go duration (``15s``, ``1m30s``, ``500ms``, ``2.5h``; metav1.Duration in JSON, the
    components' duration flags) in seconds; a bare number is seconds. ValueError otherwise."""
    t = (text or "").strip()
    if not t:
        raise ValueError("empty duration")
    sign = -1.0 if t.startswith("-") else 1.0
    t = t.lstrip("+-")
    if t[-1] == "s" and (n := t[:-1]).replace(".", "", 1).isdigit() and n.isascii():
        return sign * float(n)  # plain seconds ("15.004211s", a PodMetrics window): no regex
    try:
        return sign * float(t)
    except ValueError:
        pass
    total, pos = 0.0, 0
    for m in _DURATION_RE.finditer(t):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    if pos != len(t):
        raise ValueError(f"invalid duration {text!r}")
    return sign * total


def go_duration(seconds: float) -> str:
    """Go's ``time.Duration.String()`` for a positive duration under an hour (``15.002s``,
    ``1m0.5s``)."""
    ns = int(round(round(seconds, 6) * 1e9))  # points carry millisecond timestamps
    if ns < 1000:
        return f"{ns}ns"
    if ns < 1_000_000:
        return f"{ns / 1000:g}µs"
    if ns < 1_000_000_000:
        return f"{_trim(ns / 1e6, 6)}ms"
    minutes, rem = divmod(ns, 60 * 10**9)
    secs = _trim(rem / 1e9, 9) + "s"
    if minutes == 0:
        return secs
    hours, minutes = divmod(minutes, 60)
    return (f"{hours}h" if hours else "") + f"{minutes}m{secs}"


def _trim(v: float, digits: int) -> str:
    s = f"{v:.{digits}f}".rstrip("0").rstrip(".")
    return s or "0"
