"""The CronJob controller's time logic on a fake clock (``now`` is a parameter): the most recent
due scheduled time, missed start times, the requeue delay, Job names and Jobs from templates."""

from __future__ import annotations

import datetime as dt

import pytest

from controlplane.controllers import cronjobutil as cju
from controlplane.machinery.cron import UTC, load_location, parse_standard


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC) if "+" not in text else dt.datetime.fromisoformat(text)


def cronjob(schedule: str = "0 * * * *", created: str = "2026-01-05T09:30:00", last: str | None = None,
            deadline: int | None = None, tz: str | None = None) -> dict:
    spec: dict = {"schedule": schedule, "jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}}}
    if deadline is not None:
        spec["startingDeadlineSeconds"] = deadline
    if tz is not None:
        spec["timeZone"] = tz
    status = {"lastScheduleTime": cju.format_time(at(last))} if last else {}
    return {"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "tick", "namespace": "ns", "uid": "u-1",
                         "creationTimestamp": cju.format_time(at(created))},
            "spec": spec, "status": status}


# (case, cronjob, now, due scheduled time or None, missed)
CASES = [
    ("before-the-first", cronjob(), "2026-01-05T09:59:59", None, cju.Missed.NONE),
    ("exactly-on-time", cronjob(), "2026-01-05T10:00:00", "2026-01-05T10:00:00", cju.Missed.NONE),
    ("within-the-slot", cronjob(), "2026-01-05T10:20:00", "2026-01-05T10:00:00", cju.Missed.NONE),
    ("two-missed-latest-wins", cronjob(), "2026-01-05T11:30:00", "2026-01-05T11:00:00", cju.Missed.FEW),
    ("already-scheduled", cronjob(last="2026-01-05T10:00:00"), "2026-01-05T10:30:00", None, cju.Missed.NONE),
    ("next-after-last", cronjob(last="2026-01-05T10:00:00"), "2026-01-05T11:00:05", "2026-01-05T11:00:00",
     cju.Missed.NONE),
    ("too-many-missed", cronjob("* * * * *", created="2026-01-05T08:00:00"), "2026-01-05T10:00:00",
     "2026-01-05T10:00:00", cju.Missed.MANY),
    ("deadline-drops-old-slots", cronjob(deadline=60), "2026-01-05T11:30:30", None, cju.Missed.NONE),
    ("deadline-keeps-a-fresh-slot", cronjob(deadline=60), "2026-01-05T11:00:30", "2026-01-05T11:00:00",
     cju.Missed.NONE),
    ("every-1h", cronjob("@every 1h"), "2026-01-05T11:45:00", "2026-01-05T11:30:00", cju.Missed.FEW),
    ("irregular-hours", cronjob("30 6-16/4 * * 1-5", created="2026-01-05T00:00:00"), "2026-01-05T15:00:00",
     "2026-01-05T14:30:00", cju.Missed.FEW),
    ("time-zone", cronjob("0 9 * * *", created="2026-01-05T07:00:00", tz="Europe/Berlin"), "2026-01-05T08:00:05",
     "2026-01-05T08:00:00", cju.Missed.NONE),
]


@pytest.mark.parametrize("cj,now,due,missed", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_next_schedule_time(cj: dict, now: str, due: str | None, missed: cju.Missed) -> None:
    scheduled, got_missed = cju.next_schedule_time(cj, at(now), cju.schedule_of(cj))
    assert (scheduled.astimezone(UTC) if scheduled else None) == (at(due) if due else None)
    assert got_missed is missed


@pytest.mark.parametrize("cj,now,delay", [
    (cronjob(), "2026-01-05T09:59:59", 1.1),  # 100 ms after the next slot
    (cronjob(), "2026-01-05T10:20:00", 2400.1),  # the slot at 10:00 is due now; then 11:00
    (cronjob(last="2026-01-05T10:00:00"), "2026-01-05T10:30:00", 1800.1),
    (cronjob(deadline=60), "2026-01-05T11:30:30", 1770.1),  # the deadline does not move the next slot
    (cronjob("*/1 * * * *", created="2026-01-05T10:00:20"), "2026-01-05T10:00:20", 40.1),
], ids=["next-slot", "after-a-due-slot", "after-last", "deadline", "every-minute"])
def test_next_schedule_delay(cj: dict, now: str, delay: float) -> None:
    assert cju.next_schedule_delay(cj, at(now), cju.schedule_of(cj)) == pytest.approx(delay)


def test_schedule_that_never_fires_is_invalid() -> None:
    cj = cronjob("0 0 31 2 *")
    with pytest.raises(ValueError, match="less than 1 second"):
        cju.next_schedule_time(cj, at("2026-01-05T10:00:00"), cju.schedule_of(cj))
    assert cju.next_schedule_delay(cj, at("2026-01-05T10:00:00"), cju.schedule_of(cj)) is None


def test_schedule_uses_the_time_zone_and_tz_prefix() -> None:
    assert cju.schedule_of(cronjob("0 9 * * *", tz="Asia/Tokyo")).tz == load_location("Asia/Tokyo")
    assert cju.schedule_of(cronjob("TZ=Asia/Tokyo 0 9 * * *")).tz == load_location("Asia/Tokyo")


def test_job_name_is_minutes_since_epoch() -> None:
    assert cju.job_name(cronjob(), at("2026-01-05T10:00:00")) == "tick-29460120"
    assert cju.job_name(cronjob(), at("2026-01-05T10:00:59")) == "tick-29460120"


@pytest.mark.parametrize("tz,annotation", [(None, "2026-01-05T10:00:00Z"),
                                           ("Europe/Berlin", "2026-01-05T11:00:00+01:00"),
                                           ("UTC", "2026-01-05T10:00:00Z")])
def test_job_from_template(tz: str | None, annotation: str) -> None:
    cj = cronjob(tz=tz)
    cj["spec"]["jobTemplate"]["metadata"] = {"labels": {"app": "x"}, "annotations": {"a": "b"}}
    job = cju.job_from_template(cj, at("2026-01-05T10:00:00"))
    meta = job["metadata"]
    assert meta["name"] == "tick-29460120" and meta["namespace"] == "ns" and meta["labels"] == {"app": "x"}
    assert meta["annotations"] == {"a": "b", cju.SCHEDULED_TIMESTAMP_ANNOTATION: annotation}
    assert meta["ownerReferences"] == [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "tick", "uid": "u-1",
                                        "controller": True, "blockOwnerDeletion": True}]
    assert job["spec"] == cj["spec"]["jobTemplate"]["spec"] and job["spec"] is not cj["spec"]["jobTemplate"]["spec"]


def test_finished_jobs_oldest_first() -> None:
    def job(name: str, start: str | None) -> dict:
        return {"metadata": {"name": name}, "status": {"startTime": start} if start else {}}
    jobs = [job("c", "2026-01-05T10:02:00Z"), job("none", None), job("a", "2026-01-05T10:00:00Z"),
            job("b", "2026-01-05T10:00:00Z")]
    assert [j["metadata"]["name"] for j in sorted(jobs, key=cju.start_time_order)] == ["a", "b", "c", "none"]
    assert cju.finished_condition({"status": {"conditions": [{"type": "Failed", "status": "True"}]}}) == "Failed"
    assert cju.finished_condition({"status": {"conditions": [{"type": "Complete", "status": "False"}]}}) is None


def test_parse_standard_round_trip_through_schedule_of() -> None:
    assert cju.schedule_of(cronjob("@hourly")).expression == parse_standard("0 * * * *", UTC).expression
