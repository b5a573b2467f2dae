"""The CronJob controller against the real apiserver on a controllable clock: the controller
runs in this process with a wall clock the test sets, so the scheduled times of a
``*/5 * * * *`` CronJob come in milliseconds instead of minutes. Checks a Job per scheduled time
(name, owner, annotation, status), ``concurrencyPolicy: Forbid`` (no second Job while one is
active: JobAlreadyActive), a finished Job leaving ``status.active`` (SawCompletedJob,
lastSuccessfulTime), ``successfulJobsHistoryLimit`` (the oldest finished Job deleted) and
``suspend``. No controller-manager runs in this module (the Jobs' status is set by the test)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import pytest

from controlplane.client import resources as R
from controlplane.client.manager import Manager
from controlplane.client.rest import ApiStatusError, RestClient
from controlplane.controllers.cronjob import CronJobController
from controlplane.controllers.cronjobutil import SCHEDULED_TIMESTAMP_ANNOTATION, format_time, parse_time
from tests.integration.test_controllers_deployment import eventually, new_namespace

pytestmark = pytest.mark.integration

UTC = dt.timezone.utc


class WallClock:
    """The controller's clock: a wall time the test moves."""

    def __init__(self, t: dt.datetime) -> None:
        self.t = t

    def now(self) -> dt.datetime:
        return self.t


def cronjob(ns: str) -> dict:
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "tick", "namespace": ns},
            "spec": {"schedule": "*/5 * * * *", "concurrencyPolicy": "Forbid", "successfulJobsHistoryLimit": 1,
                     "jobTemplate": {"metadata": {"labels": {"app": "tick"}}, "spec": {"template": {"spec": {
                         "containers": [{"name": "c", "image": "busybox", "command": ["date"]}],
                         "restartPolicy": "OnFailure"}}}}}}


def slot_after(t: dt.datetime) -> dt.datetime:
    """The next */5 scheduled time strictly after ``t``."""
    base = t.replace(second=0, microsecond=0)
    return base + dt.timedelta(minutes=5 - base.minute % 5)


def job_name(scheduled: dt.datetime) -> str:
    return f"tick-{int(scheduled.timestamp()) // 60}"


async def complete(client: RestClient, ns: str, name: str, started: dt.datetime) -> None:
    done = started + dt.timedelta(seconds=20)
    await client.patch(R.JOBS, name, {"status": {
        "startTime": format_time(started), "completionTime": format_time(done), "succeeded": 1,
        "conditions": [{"type": "Complete", "status": "True", "lastTransitionTime": format_time(done)}]}},
        ns, subresource="status")


async def test_cronjob_controller_on_a_controllable_clock(apiserver, kubectl, client):
    ns = await new_namespace(client, "cj-clock")
    clock = WallClock(dt.datetime.now(UTC))
    mgr_client = RestClient.from_kubeconfig(apiserver.kubeconfig)
    mgr = Manager(mgr_client, name="cronjob-clock-test")
    ctl = CronJobController(mgr, workers=1, now=clock.now)
    stop = asyncio.Event()
    run = asyncio.create_task(mgr.start(stop))
    try:
        await asyncio.wait_for(mgr.caches_synced.wait(), 30)
        await asyncio.to_thread(kubectl, "create", "-f", "-", input=json.dumps(cronjob(ns)))
        cj = await client.get(R.CRONJOBS, "tick", ns)
        key = f"{ns}/tick"
        first = slot_after(parse_time(cj["metadata"]["creationTimestamp"]))
        second = first + dt.timedelta(minutes=5)
        third = second + dt.timedelta(minutes=5)

        async def jobs() -> dict[str, dict]:
            return {j["metadata"]["name"]: j for j in (await client.list(R.JOBS, ns))["items"]}

        async def status_with(active: list[str], **fields: str):
            st = (await client.get(R.CRONJOBS, "tick", ns)).get("status") or {}
            ok = [a["name"] for a in st.get("active") or []] == active and all(st.get(k) == v for k, v in fields.items())
            return st if ok else None

        async def event(reason: str):
            evs = [e for e in (await client.list(R.EVENTS, ns))["items"]
                   if e["reason"] == reason and e["involvedObject"]["name"] == "tick"]
            return evs[0] if evs else None

        # nothing is due before the first scheduled time
        clock.t = first - dt.timedelta(seconds=1)
        ctl.controller.enqueue(key)
        await asyncio.sleep(0.5)
        assert await jobs() == {}

        # the first scheduled time: its Job, owned and annotated, recorded in the status
        clock.t = first + dt.timedelta(seconds=30)
        ctl.controller.enqueue(key)
        job1 = (await eventually(lambda: _has(jobs, job_name(first))))[job_name(first)]
        assert job1["metadata"]["annotations"][SCHEDULED_TIMESTAMP_ANNOTATION] == format_time(first)
        assert job1["metadata"]["labels"] == {"app": "tick"}
        assert job1["metadata"]["ownerReferences"][0]["uid"] == cj["metadata"]["uid"]
        await eventually(lambda: status_with([job_name(first)], lastScheduleTime=format_time(first)))

        # Forbid: the second scheduled time comes while the first Job is still active
        clock.t = second + dt.timedelta(seconds=30)
        ctl.controller.enqueue(key)
        await eventually(lambda: event("JobAlreadyActive"))
        assert sorted(await jobs()) == [job_name(first)]

        # the first Job finishes: it leaves status.active, and the due second time runs now
        await complete(client, ns, job_name(first), first + dt.timedelta(seconds=1))
        await eventually(lambda: _has(jobs, job_name(second)))
        await eventually(lambda: status_with([job_name(second)], lastScheduleTime=format_time(second),
                                             lastSuccessfulTime=format_time(first + dt.timedelta(seconds=21))))
        # Events are written by the recorder after the reconcile that emits them: wait for them
        assert (await eventually(lambda: event("SawCompletedJob")))["message"] == f"Saw completed job: {job_name(first)}, condition: Complete"

        # successfulJobsHistoryLimit 1: once the second finishes, the first is deleted
        await complete(client, ns, job_name(second), second + dt.timedelta(seconds=31))

        async def only_second():
            names = sorted(await jobs())
            return names == [job_name(second)]
        await eventually(only_second)
        assert (await eventually(lambda: event("SuccessfulDelete")))["message"] == f"Deleted job {job_name(first)}"

        # suspended: the third scheduled time starts nothing
        await client.patch(R.CRONJOBS, "tick", {"spec": {"suspend": True}}, ns)
        await eventually(lambda: _suspended(ctl, key))
        clock.t = third + dt.timedelta(seconds=30)
        ctl.controller.enqueue(key)
        await asyncio.sleep(0.5)
        assert sorted(await jobs()) == [job_name(second)]
    finally:
        stop.set()
        await asyncio.wait_for(run, 30)
        await mgr_client.close()
        try:
            await client.delete(R.NAMESPACES, ns)
        except ApiStatusError:
            pass


async def _has(jobs, name: str):
    found = await jobs()
    return found if name in found else None


async def _suspended(ctl: CronJobController, key: str) -> bool:
    cached = ctl.cj_inf.get(key)
    return bool(cached and cached["spec"].get("suspend"))
