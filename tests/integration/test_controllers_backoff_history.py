"""Two controller behaviours a Kubernetes user meets, end to end (real etcd, apiserver,
controller-manager, kubectl; pod phases patched by the test as a kubelet would):

- the Job controller's pod failure back-off: a failing Job's replacement pods come after
  growing gaps (the controller-manager runs here with a 1 s base and a 3 s cap, so 1 s, 2 s,
  then 3 s);
- ControllerRevision adoption: ``kubectl delete sts|ds --cascade=orphan`` and the same object
  created again keeps its history (``kubectl rollout history``), and a revision relabelled
  out of the selector is released."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from controlplane.client import resources as R
from controlplane.client.rest import ApiStatusError
from controlplane.machinery.timestamps import micro_time
from tests.fixtures.controllers import PodSimulator
from tests.integration.test_controllers_deployment import eventually, new_namespace

pytestmark = pytest.mark.integration

# read by the controller_manager fixture (tests/fixtures/controllers.py)
BASE, CAP = 1.0, 3.0
controller_manager_args = ["--job-pod-failure-backoff", "1s", "--job-pod-failure-backoff-max", "3s"]

CONTAINERS = [{"name": "c", "image": "busybox"}]


async def fail(client, pod):
    """What a kubelet reports for a container that exited 1 now (sub-second finishedAt)."""
    now = micro_time()
    st = {"phase": "Failed",
          "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": now}],
          "containerStatuses": [{"name": "c", "image": "busybox", "imageID": "", "ready": False, "restartCount": 0,
                                 "started": False, "state": {"terminated": {
                                     "exitCode": 1, "reason": "Error", "startedAt": now, "finishedAt": now}}}]}
    md = pod["metadata"]
    await client.patch(R.PODS, md["name"], {"status": st}, md["namespace"], subresource="status")


async def test_failed_job_pods_are_replaced_after_a_growing_back_off(apiserver, controller_manager, kubectl, client):
    ns = await new_namespace(client, "jobbackoff")
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "flaky", "namespace": ns},
           "spec": {"backoffLimit": 6, "template": {"spec": {"restartPolicy": "Never", "containers": CONTAINERS}}}}
    await asyncio.to_thread(kubectl, "create", "-f", "-", input=json.dumps(job))
    seen: set[str] = set()

    async def new_pod():
        pods = (await client.list(R.PODS, ns, label_selector="batch.kubernetes.io/job-name=flaky"))["items"]
        fresh = [p for p in pods if p["metadata"]["name"] not in seen]
        return fresh[0] if fresh else None

    gaps = []
    pod = await eventually(new_pod)
    for _ in range(3):
        seen.add(pod["metadata"]["name"])
        await fail(client, pod)
        failed_at = time.time()
        pod = await eventually(new_pod, interval=0.05)
        gaps.append(time.time() - failed_at)
    expected = [BASE, 2 * BASE, CAP]  # 1 s, 2 s, then 4 s capped at 3 s
    for gap, want in zip(gaps, expected):
        assert want - 0.2 <= gap <= want + 2.5, (gaps, expected)
    assert gaps[0] < gaps[1] < gaps[2], gaps
    # the controller creates the replacement pod before it writes the Job's status: wait for it
    async def counted():
        st = (await client.get(R.JOBS, "flaky", ns)).get("status") or {}
        return st if st.get("failed") == 3 and st.get("active") == 1 else None
    j = {"status": await eventually(counted, timeout=10)}
    assert not any(c["type"] == "Failed" for c in j["status"].get("conditions") or [])
    # the Job completes once a pod succeeds
    await client.patch(R.PODS, pod["metadata"]["name"], {"status": {"phase": "Succeeded"}}, ns, subresource="status")

    async def complete():
        st = (await client.get(R.JOBS, "flaky", ns)).get("status") or {}
        return any(c["type"] == "Complete" and c["status"] == "True" for c in st.get("conditions") or [])
    await eventually(complete)


async def history_of(kubectl, kind, name, ns):
    out = (await asyncio.to_thread(kubectl, "rollout", "history", f"{kind}/{name}", "-n", ns)).stdout
    return [ln.split()[0] for ln in out.splitlines()[2:] if ln.strip()]


async def orphan_and_recreate(client, kubectl, res, kind, name, ns, manifest, label):
    """Two revisions, then delete with --cascade=orphan, then create the same object again
    (its last template, as ``kubectl get -o yaml`` showed it): the new object adopts the
    orphaned revisions and makes no third one. Returns the revisions and the new object."""
    await asyncio.to_thread(kubectl, "apply", "-f", "-", input=json.dumps(manifest))
    await asyncio.to_thread(kubectl, "set", "image", f"{kind}/{name}", "c=busybox:2", "-n", ns)

    async def revisions(n, owner_uid=None, orphans=False):
        items = (await client.list(R.CONTROLLERREVISIONS, ns, label_selector=label))["items"]
        if len(items) != n:
            return None
        refs = [r["metadata"].get("ownerReferences") or [] for r in items]
        if orphans and any(refs):
            return None
        if owner_uid and not all(len(rs) == 1 and rs[0]["uid"] == owner_uid and rs[0]["controller"] for rs in refs):
            return None
        return sorted(items, key=lambda r: r["revision"])
    first = await client.get(res, name, ns)
    before = await eventually(lambda: revisions(2, first["metadata"]["uid"]))
    stored = (await client.get(res, name, ns))["spec"]["template"]  # as set-image left it (defaults kept)
    assert await history_of(kubectl, kind, name, ns) == ["1", "2"]

    res_ = await asyncio.to_thread(kubectl, "delete", kind, name, "-n", ns, "--cascade=orphan")
    assert "deleted" in res_.stdout, res_.stdout + res_.stderr

    async def gone():
        return not any(o["metadata"]["name"] == name for o in (await client.list(res, ns))["items"])
    await eventually(gone)
    await eventually(lambda: revisions(2, orphans=True))

    again = {**manifest, "spec": {**manifest["spec"], "template": stored}}  # the same object again
    await asyncio.to_thread(kubectl, "apply", "-f", "-", input=json.dumps(again))
    second = await client.get(res, name, ns)
    assert second["metadata"]["uid"] != first["metadata"]["uid"]
    after = await eventually(lambda: revisions(2, second["metadata"]["uid"]))
    assert [(r["metadata"]["name"], r["revision"]) for r in after] == \
        [(r["metadata"]["name"], r["revision"]) for r in before], "the history is kept, not re-made"
    assert await history_of(kubectl, kind, name, ns) == ["1", "2"]
    return after, second


async def test_statefulset_keeps_its_history_across_an_orphaning_delete(apiserver, controller_manager, kubectl,
                                                                        client):
    ns = await new_namespace(client, "sthist")
    sim = await PodSimulator(client, ns).start()
    try:
        ss = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": ns},
              "spec": {"replicas": 1, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                       "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": CONTAINERS}}}}
        revs, owner = await orphan_and_recreate(client, kubectl, R.STATEFULSETS, "statefulset", "db", ns, ss, "app=db")

        async def settled():  # the orphaned pod adopted too, and on the update revision
            st = (await client.get(R.STATEFULSETS, "db", ns)).get("status") or {}
            pod = await client.get(R.PODS, "db-0", ns)
            refs = pod["metadata"].get("ownerReferences") or []
            return (st.get("updateRevision") == revs[1]["metadata"]["name"] and st.get("readyReplicas") == 1
                    and [r["uid"] for r in refs] == [owner["metadata"]["uid"]])
        await eventually(settled)

        # the uid an adoption patch carries is a precondition (a revision re-made under the same
        # name is not taken by mistake)
        old = revs[0]["metadata"]["name"]
        with pytest.raises(ApiStatusError) as e:
            await client.patch(R.CONTROLLERREVISIONS, old, {"metadata": {"uid": "not-this-one", "ownerReferences": [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "x-1"}]}}, ns, patch_type="strategic")
        assert e.value.code == 422 and "metadata.uid" in e.value.message, e.value
        # a PUT's body uid is a storage precondition: 409 Conflict, as kube-apiserver answers
        body = await client.get(R.CONTROLLERREVISIONS, old, ns)
        real_uid = body["metadata"]["uid"]
        body["metadata"]["uid"] = "not-this-one"
        with pytest.raises(ApiStatusError) as e:
            await client.request("PUT", R.CONTROLLERREVISIONS.path(ns, old), body=body)
        assert e.value.code == 409 and e.value.message == (
            f'Operation cannot be fulfilled on controllerrevisions.apps "{old}": Precondition failed: '
            f'UID in precondition: not-this-one, UID in object meta: {real_uid}'), e.value

        # a revision relabelled out of the selector is released (its controller reference dropped)
        await asyncio.to_thread(kubectl, "label", "controllerrevision", old, "app=elsewhere", "--overwrite", "-n", ns)

        async def released():
            r = await client.get(R.CONTROLLERREVISIONS, old, ns)
            return not r["metadata"].get("ownerReferences")
        await eventually(released)
        assert await history_of(kubectl, "statefulset", "db", ns) == ["2"]
    finally:
        await sim.stop()


async def test_daemonset_keeps_its_history_across_an_orphaning_delete(apiserver, controller_manager, kubectl, client):
    ns = await new_namespace(client, "dshist")
    ds = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent", "namespace": ns},
          "spec": {"selector": {"matchLabels": {"app": "agent"}},
                   "template": {"metadata": {"labels": {"app": "agent"}},
                                "spec": {"nodeSelector": {"no-node": "has-this"}, "containers": CONTAINERS}}}}
    await orphan_and_recreate(client, kubectl, R.DAEMONSETS, "daemonset", "agent", ns, ds, "app=agent")
    res = await asyncio.to_thread(kubectl, "rollout", "undo", "daemonset/agent", "-n", ns)
    assert "rolled back" in res.stdout, res.stdout + res.stderr

    async def rolled_back():
        got = await client.get(R.DAEMONSETS, "agent", ns)
        return got["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox"
    await eventually(rolled_back)
