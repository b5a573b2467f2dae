"""Job pod adoption end to end (real etcd, apiserver, controller-manager, kubectl; pod phases
patched by the test as a kubelet would): ``kubectl delete job --cascade=orphan`` leaves the
pods, and ``kubectl apply`` of the same Job (``manualSelector: true``, the same selector)
adopts them (controller reference and tracking finalizer added) instead of creating new ones,
counts the one that had already succeeded and completes counting the others; a matching pod
another controller owns is left alone. A Job's pod relabelled out of its selector is released
(reference and finalizer removed) and replaced."""

from __future__ import annotations

import asyncio
import json

import pytest

from controlplane.client import resources as R
from controlplane.client.rest import ApiStatusError
from tests.integration.test_controllers_deployment import eventually, new_namespace
from tests.integration.test_controllers_job_policies import CONTAINERS, running, set_status

pytestmark = pytest.mark.integration

FIN = "batch.kubernetes.io/job-tracking"


def manual_job(name, ns, app, **spec):
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": ns},
            "spec": {**spec, "manualSelector": True, "selector": {"matchLabels": {"app": app}},
                     "template": {"metadata": {"labels": {"app": app}},
                                  "spec": {"restartPolicy": "Never", "containers": CONTAINERS}}}}


async def app_pods(client, ns, app):
    items = (await client.list(R.PODS, ns, label_selector=f"app={app}"))["items"]
    return sorted(items, key=lambda p: p["metadata"]["creationTimestamp"] + p["metadata"]["name"])


def finalizers(p):
    return p["metadata"].get("finalizers") or []


def controller_uid(p):
    return next((r["uid"] for r in p["metadata"].get("ownerReferences") or [] if r.get("controller")), None)


async def status_is(client, ns, name, **want):
    j = await client.get(R.JOBS, name, ns)
    st = j.get("status") or {}
    return j if all(st.get(k, 0) == v for k, v in want.items()) else None


async def complete(client, ns, name):
    j = await client.get(R.JOBS, name, ns)
    return j if any(c["type"] == "Complete" and c["status"] == "True"
                    for c in (j.get("status") or {}).get("conditions") or []) else None


async def created_by(client, ns, uid):
    return sum(int(e.get("count") or 1) for e in (await client.list(R.EVENTS, ns))["items"]
               if e["reason"] == "SuccessfulCreate" and e["involvedObject"].get("uid") == uid)


async def test_orphaned_pods_adopted_by_the_reapplied_job(apiserver, controller_manager, kubectl, client):
    ns = await new_namespace(client, "jadopt")
    manifest = json.dumps(manual_job("again", ns, "again", completions=3, parallelism=2))
    await asyncio.to_thread(kubectl, "apply", "-f", "-", input=manifest)
    first = await client.get(R.JOBS, "again", ns)

    async def n_running(n):
        pods = running(await app_pods(client, ns, "again"))
        return pods if len(pods) == n else None
    a, _ = await eventually(lambda: n_running(2))
    await set_status(client, a, "Succeeded", exit_code=0)
    await eventually(lambda: status_is(client, ns, "again", succeeded=1, active=2))
    pods = await eventually(lambda: n_running(2))
    await asyncio.to_thread(kubectl, "delete", "job", "again", "-n", ns, "--cascade=orphan")

    async def orphaned():
        now = await app_pods(client, ns, "again")
        return now if len(now) == 3 and all(not p["metadata"].get("ownerReferences") and not finalizers(p)
                                            for p in now) else None
    await eventually(orphaned)
    # a matching pod another controller owns (a ConfigMap here, so the garbage collector keeps it)
    cm = await client.create(R.CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner"}}, ns)
    await client.create(R.PODS, {"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "theirs", "labels": {"app": "again"}, "ownerReferences": [
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": cm["metadata"]["uid"],
             "controller": True}]}, "spec": {"restartPolicy": "Never", "containers": CONTAINERS}}, ns)

    await asyncio.to_thread(kubectl, "apply", "-f", "-", input=manifest)
    second = await client.get(R.JOBS, "again", ns)
    uid = second["metadata"]["uid"]
    assert uid != first["metadata"]["uid"]

    async def adopted():
        now = [p for p in await app_pods(client, ns, "again") if p["metadata"]["name"] != "theirs"]
        return now if len(now) == 3 and all(controller_uid(p) == uid for p in now) else None
    await eventually(adopted)
    # the succeeded pod counted (its finalizer added back by the adoption, then removed), the
    # two running ones active and tracked, none created
    await eventually(lambda: status_is(client, ns, "again", succeeded=1, active=2, failed=0))
    now = {p["metadata"]["name"]: p for p in await app_pods(client, ns, "again")}
    assert not finalizers(now[a["metadata"]["name"]])
    assert all(FIN in finalizers(now[p["metadata"]["name"]]) for p in pods)
    for p in pods:
        await set_status(client, p, "Succeeded", exit_code=0)
    j = await eventually(lambda: complete(client, ns, "again"))
    assert (j["status"]["succeeded"], j["status"].get("failed", 0)) == (3, 0)
    assert await created_by(client, ns, uid) == 0, "the adopted pods were enough"
    now = await app_pods(client, ns, "again")
    assert len(now) == 4 and not any(FIN in finalizers(p) for p in now)
    theirs = next(p for p in now if p["metadata"]["name"] == "theirs")
    assert controller_uid(theirs) == cm["metadata"]["uid"], "another controller's pod is left alone"
    out = (await asyncio.to_thread(kubectl, "get", "job", "again", "-n", ns,
                                   "-o", "jsonpath={.status.succeeded}")).stdout
    assert out.strip() == "3"


async def test_relabelled_pod_released_and_replaced(apiserver, controller_manager, kubectl, client):
    ns = await new_namespace(client, "jrelease")
    await asyncio.to_thread(kubectl, "apply", "-f", "-", input=json.dumps(manual_job("rel", ns, "rel")))
    j = await client.get(R.JOBS, "rel", ns)

    async def one_running():
        pods = running(await app_pods(client, ns, "rel"))
        return pods[0] if len(pods) == 1 else None
    p = await eventually(one_running)
    name = p["metadata"]["name"]
    assert controller_uid(p) == j["metadata"]["uid"] and FIN in finalizers(p)
    await asyncio.to_thread(kubectl, "label", "pod", name, "-n", ns, "app=elsewhere", "--overwrite")

    async def released():
        q = await client.get(R.PODS, name, ns)
        return q if not q["metadata"].get("ownerReferences") and not finalizers(q) else None
    await eventually(released)
    replacement = await eventually(one_running)
    assert replacement["metadata"]["name"] != name
    await set_status(client, replacement, "Succeeded", exit_code=0)
    j = await eventually(lambda: complete(client, ns, "rel"))
    assert j["status"]["succeeded"] == 1 and not j["status"].get("failed")
    try:
        await client.get(R.PODS, name, ns)   # released, not deleted
    except ApiStatusError as e:
        raise AssertionError(f"the released pod was deleted: {e}") from e
