"""The CronJob controller's pure logic, ported from kube-controller-manager's
``pkg/controller/cronjob/utils.go``: which scheduled time (if any) is due now, how long to sleep
until the next one, how many start times were missed, the Job made for a scheduled time, and
the Job predicates the controller uses. Every function takes ``now`` (an aware datetime), so
tests drive it with a fake clock. Schedules are ``controlplane.machinery.cron`` schedules.
Neighbours: ``cronjob`` (the controller), ``controllerutil`` (owner references).
"""

from __future__ import annotations

import copy
import datetime as _dt
from enum import Enum
from typing import Any

from controlplane.controllers import controllerutil as cu
from controlplane.machinery.cron import UTC, Schedule, load_location, local_zone, parse_standard
from controlplane.machinery.timestamps import parse_time_or_none

SCHEDULED_TIMESTAMP_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp"
NEXT_SCHEDULE_DELTA = _dt.timedelta(milliseconds=100)  # NTP skew padding of a requeue
TOO_MANY_MISSED = 100


class Missed(Enum):
    NONE = 0
    FEW = 1
    MANY = 2


def parse_time(value: str | None) -> _dt.datetime | None:
    """An optional RFC 3339 time as an aware datetime (None when missing or malformed)."""
    ts = parse_time_or_none(value)
    return _dt.datetime.fromtimestamp(ts, UTC) if ts is not None else None


def format_time(t: _dt.datetime) -> str:
    """A metav1.Time (RFC 3339, UTC, whole seconds)."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def schedule_of(cj: dict) -> Schedule:
    """``formatSchedule`` + ``cron.ParseStandard``: the schedule in ``spec.timeZone`` (a schedule
    with its own ``TZ=`` prefix keeps it; no zone: the controller's local zone, as Kubernetes).
    CronError when the schedule or the zone is invalid."""
    spec = cj.get("spec") or {}
    text = str(spec.get("schedule") or "")
    tz_name = spec.get("timeZone")
    if "TZ" not in text and tz_name is not None:
        return parse_standard(text, load_location(tz_name))
    return parse_standard(text, local_zone())


def most_recent_schedule_time(cj: dict, now: _dt.datetime, schedule: Schedule,
                              include_deadline: bool) -> tuple[_dt.datetime, _dt.datetime | None, Missed]:
    """``mostRecentScheduleTime``: (the earliest time considered — last schedule time or
    creation, or ``now - startingDeadlineSeconds`` when later and ``include_deadline`` —, the
    most recent scheduled time at or before ``now`` after it (None: none), how many were
    missed). ValueError for schedules that never fire (``0 0 31 2 *``)."""
    status, spec = cj.get("status") or {}, cj.get("spec") or {}
    earliest = parse_time(status.get("lastScheduleTime")) or parse_time(
        (cj.get("metadata") or {}).get("creationTimestamp")) or now
    deadline = spec.get("startingDeadlineSeconds")
    if include_deadline and deadline is not None:
        scheduling_deadline = now - _dt.timedelta(seconds=int(deadline))
        if scheduling_deadline > earliest:
            earliest = scheduling_deadline
    t1 = schedule.next(earliest)
    t2 = schedule.next(t1) if t1 is not None else None
    if t1 is not None and now < t1:
        return earliest, None, Missed.NONE
    if t2 is not None and now < t2:
        return earliest, t1, Missed.NONE
    between = round((t2 - t1).total_seconds()) if t1 is not None and t2 is not None else 0
    if between < 1:
        raise ValueError("time difference between two schedules is less than 1 second")
    assert t1 is not None
    elapsed = int((now - t1).total_seconds())
    missed_count = elapsed // between + 1
    # start one interval early and let the schedule find the exact times (irregular schedules
    # such as "30 6-16/4 * * 1-5" are not evenly spaced)
    most_recent: _dt.datetime | None = None
    t = schedule.next(t1 + _dt.timedelta(seconds=(missed_count - 2) * between))
    while t is not None and t <= now:
        most_recent = t
        t = schedule.next(t)
    missed = Missed.MANY if missed_count > TOO_MANY_MISSED else Missed.FEW if missed_count > 0 else Missed.NONE
    return earliest, most_recent, missed


def next_schedule_time(cj: dict, now: _dt.datetime, schedule: Schedule) -> tuple[_dt.datetime | None, Missed]:
    """``nextScheduleTime``: the scheduled time to start a Job for now (None: nothing is due),
    and how many start times were missed (MANY: the controller says "too many missed start
    times"). ValueError as ``most_recent_schedule_time``."""
    _, most_recent, missed = most_recent_schedule_time(cj, now, schedule, include_deadline=True)
    if most_recent is None or most_recent > now:
        return None, missed
    return most_recent, missed


def next_schedule_delay(cj: dict, now: _dt.datetime, schedule: Schedule) -> float | None:
    """``nextScheduleTimeDuration``: seconds until the next scheduled time after the last one
    (plus 100 ms), when the controller should look again. None when the schedule never fires."""
    try:
        earliest, most_recent, _ = most_recent_schedule_time(cj, now, schedule, include_deadline=False)
        base = most_recent or earliest
    except ValueError:
        base = now
    nxt = schedule.next(base)
    if nxt is None:
        return None
    return ((nxt + NEXT_SCHEDULE_DELTA) - now).total_seconds()


def job_name(cj: dict, scheduled: _dt.datetime) -> str:
    """``<cronjob>-<scheduled time in minutes since the epoch>``: one name per scheduled time, so
    a Job is never created twice for it."""
    return f"{cj['metadata']['name']}-{int(scheduled.timestamp()) // 60}"


def job_from_template(cj: dict, scheduled: _dt.datetime) -> dict:
    """``getJobFromTemplate2``: the Job for ``scheduled``, controlled by the CronJob, with the
    template's labels and annotations plus the scheduled-timestamp annotation (RFC 3339 in the
    CronJob's time zone)."""
    spec = cj.get("spec") or {}
    template = spec.get("jobTemplate") or {}
    tmeta = template.get("metadata") or {}
    tz = load_location(spec["timeZone"]) if spec.get("timeZone") is not None else UTC
    annotations = dict(tmeta.get("annotations") or {})
    annotations[SCHEDULED_TIMESTAMP_ANNOTATION] = _rfc3339_in(scheduled, tz)
    meta: dict[str, Any] = {"name": job_name(cj, scheduled), "namespace": cj["metadata"].get("namespace"),
                            "annotations": annotations, "ownerReferences": [cu.new_controller_ref(cj)]}
    if tmeta.get("labels"):
        meta["labels"] = dict(tmeta["labels"])
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta,
            "spec": copy.deepcopy(template.get("spec") or {})}


def _rfc3339_in(t: _dt.datetime, tz: _dt.tzinfo) -> str:
    """Go's ``time.RFC3339`` of ``t`` in ``tz``: ``Z`` for a zero offset, else ``+hh:mm``."""
    local = t.astimezone(tz)
    if local.utcoffset() == _dt.timedelta(0):
        return local.strftime("%Y-%m-%dT%H:%M:%SZ")
    return local.isoformat(timespec="seconds")


def finished_condition(job: dict) -> str | None:
    """``Complete`` or ``Failed`` when the Job has finished (its condition is True), else None."""
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return c["type"]
    return None


def start_time_order(job: dict) -> tuple[int, float, str]:
    """``byJobStartTime``: started Jobs oldest first, then Jobs not started; ties by name."""
    started = parse_time((job.get("status") or {}).get("startTime"))
    return (0, started.timestamp(), job["metadata"]["name"]) if started else (1, 0.0, job["metadata"]["name"])
