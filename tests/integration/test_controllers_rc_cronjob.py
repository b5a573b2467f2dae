"""ReplicationController and CronJob end to end with the real kubectl, apiserver and
controller-manager: ``create -f`` of a multi-document file holding an RC, ``get``, ``scale rc``,
pods made and removed by the RC controller; ``kubectl create cronjob`` with a Job created at the
next minute (one real minute, at most ~65 s), bad schedules and zones refused with Kubernetes'
messages. The CronJob controller's time logic on a controllable clock is
``test_controllers_cronjob_clock.py``."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import pytest

from controlplane.client import resources as R
from tests.fixtures.controllers import PodSimulator
from tests.integration.test_controllers_deployment import eventually, live, new_namespace

pytestmark = pytest.mark.integration

MULTI_DOC = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
data:
  greeting: hello
---
apiVersion: v1
kind: ReplicationController
metadata:
  name: web
spec:
  replicas: 3
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: busybox
        command: ["sh", "-c", "sleep 3600"]
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
  ports:
  - port: 80
"""


def owned_pods(items: list[dict], owner_uid: str) -> list[dict]:
    return [p for p in live(items) if any(r.get("uid") == owner_uid and r.get("controller")
                                          for r in p["metadata"].get("ownerReferences") or [])]


async def test_replication_controller_create_get_scale(apiserver, controller_manager, kubectl, client, tmp_path):
    ns = await new_namespace(client, "rc")
    sim = await PodSimulator(client, ns).start()
    try:
        manifest = tmp_path / "web.yaml"
        manifest.write_text(MULTI_DOC)
        out = (await asyncio.to_thread(kubectl, "create", "-f", str(manifest), "-n", ns)).stdout
        assert "replicationcontroller/web created" in out and "configmap/web-config created" in out
        rc = await client.get(R.REPLICATIONCONTROLLERS, "web", ns)
        assert rc["spec"]["selector"] == {"app": "web"} and rc["metadata"]["labels"] == {"app": "web"}

        async def pods(n: int):
            items = owned_pods((await client.list(R.PODS, ns))["items"], rc["metadata"]["uid"])
            return items if len(items) == n else None
        created = await eventually(lambda: pods(3))
        assert all(p["metadata"]["generateName"] == "web-" for p in created)

        async def ready(n: int):
            st = (await client.get(R.REPLICATIONCONTROLLERS, "web", ns)).get("status") or {}
            return st.get("replicas") == n and st.get("readyReplicas") == n and st.get("observedGeneration", 0) >= 1
        await eventually(lambda: ready(3))
        table = (await asyncio.to_thread(kubectl, "get", "rc", "-n", ns)).stdout.splitlines()
        assert table[0].split() == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
        assert table[1].split()[:4] == ["web", "3", "3", "3"]
        wide = (await asyncio.to_thread(kubectl, "get", "rc", "web", "-n", ns, "-o", "wide")).stdout.splitlines()
        assert wide[0].split()[-3:] == ["CONTAINERS", "IMAGES", "SELECTOR"] and wide[1].split()[-1] == "app=web"

        out = (await asyncio.to_thread(kubectl, "scale", "rc", "web", "--replicas=1", "-n", ns)).stdout
        assert "replicationcontroller/web scaled" in out
        await eventually(lambda: pods(1))
        await eventually(lambda: ready(1))
        assert (await client.get(R.REPLICATIONCONTROLLERS, "web", ns))["metadata"]["generation"] == 2

        # a pod deleted by hand is replaced
        await asyncio.to_thread(kubectl, "scale", "rc/web", "--replicas=2", "-n", ns)
        two = await eventually(lambda: pods(2))
        await client.delete(R.PODS, two[0]["metadata"]["name"], ns)

        async def replaced():
            items = await pods(2)
            return items if items and two[0]["metadata"]["name"] not in {p["metadata"]["name"] for p in items} else None
        await eventually(replaced)

        async def created_event():
            events = (await client.list(R.EVENTS, ns))["items"]
            return any(e["reason"] == "SuccessfulCreate" and e["source"]["component"] == "replication-controller"
                       for e in events)
        await eventually(created_event)  # the recorder writes Events after the reconcile

        # deleting the RC deletes its pods (the garbage collector follows the owner references)
        await asyncio.to_thread(kubectl, "delete", "rc", "web", "-n", ns)

        async def no_pods():
            return not owned_pods((await client.list(R.PODS, ns))["items"], rc["metadata"]["uid"])
        await eventually(no_pods)
    finally:
        await sim.stop()


async def test_cronjob_bad_schedule_and_zone_are_refused(apiserver, kubectl, client):
    ns = await new_namespace(client, "cj-bad")
    res = await asyncio.to_thread(kubectl, "create", "cronjob", "bad", "--image=busybox", "--schedule=* * * *",
                                  "-n", ns, check=False)
    assert res.returncode != 0
    assert res.stderr.strip() == ('error: failed to create cronjob: CronJob.batch "bad" is invalid: spec.schedule: '
                                  'Invalid value: "* * * *": expected exactly 5 fields, found 4: [* * * *]')
    cj = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "zoned"},
          "spec": {"schedule": "0 9 * * *", "timeZone": "Mars/Olympus_Mons", "jobTemplate": {"spec": {"template": {
              "spec": {"containers": [{"name": "c", "image": "busybox"}], "restartPolicy": "OnFailure"}}}}}}
    res = await asyncio.to_thread(kubectl, "create", "-f", "-", "-n", ns, input=json.dumps(cj), check=False)
    assert res.returncode != 0
    assert 'spec.timeZone: Invalid value: "Mars/Olympus_Mons": unknown time zone Mars/Olympus_Mons' in res.stderr


async def test_kubectl_create_cronjob_gets_a_job_within_a_minute(apiserver, controller_manager, kubectl, client):
    ns = await new_namespace(client, "cj")
    out = (await asyncio.to_thread(kubectl, "create", "cronjob", "tick", "--image=busybox",
                                   "--schedule=*/1 * * * *", "-n", ns, "--", "date")).stdout
    assert "cronjob.batch/tick created" in out
    cj = await client.get(R.CRONJOBS, "tick", ns)
    assert cj["spec"]["concurrencyPolicy"] == "Allow" and cj["spec"]["successfulJobsHistoryLimit"] == 3
    table = (await asyncio.to_thread(kubectl, "get", "cronjobs", "-n", ns)).stdout.splitlines()
    assert table[0].split() == ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST", "SCHEDULE", "AGE"]
    assert table[1].split()[:9] == ["tick", "*/1", "*", "*", "*", "*", "<none>", "False", "0"]

    async def job():
        items = (await client.list(R.JOBS, ns))["items"]
        return items[0] if items else None
    created = await eventually(job, timeout=75, interval=0.5)  # the next minute boundary, then the Job
    meta = created["metadata"]
    scheduled = dt.datetime.fromisoformat(meta["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]
                                          .replace("Z", "+00:00"))
    assert scheduled.second == 0 and meta["name"] == f"tick-{int(scheduled.timestamp()) // 60}"
    assert meta["ownerReferences"] == [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "tick",
                                        "uid": cj["metadata"]["uid"], "controller": True,
                                        "blockOwnerDeletion": True}]
    assert created["spec"]["template"]["spec"]["containers"][0]["command"] == ["date"]

    async def recorded():
        st = (await client.get(R.CRONJOBS, "tick", ns)).get("status") or {}
        return st if [a.get("name") for a in st.get("active") or []] == [meta["name"]] else None
    status = await eventually(recorded)
    assert status["lastScheduleTime"] == scheduled.strftime("%Y-%m-%dT%H:%M:%SZ")

    async def event():
        evs = (await client.list(R.EVENTS, ns))["items"]
        return [e for e in evs if e["reason"] == "SuccessfulCreate" and e["involvedObject"]["kind"] == "CronJob"]
    (ev,) = await eventually(event)
    assert ev["message"] == f"Created job {meta['name']}" and ev["source"]["component"] == "cronjob-controller"
    out = (await asyncio.to_thread(kubectl, "patch", "cronjob", "tick", "-n", ns, "--type=merge",
                                   "-p", '{"spec":{"suspend":true}}')).stdout
    assert "cronjob.batch/tick patched" in out
    # deleting the CronJob deletes its Jobs (garbage collector)
    await asyncio.to_thread(kubectl, "delete", "cronjob", "tick", "-n", ns)

    async def no_jobs():
        return not (await client.list(R.JOBS, ns))["items"]
    await eventually(no_jobs)
