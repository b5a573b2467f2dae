"""StatefulSet, DaemonSet, Job, Namespace, Endpoints and ServiceAccount controllers end to
end (real etcd, apiserver, controller-manager, kubectl; pods marked by the test)."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from controlplane.client import resources as R
from controlplane.client.rest import ApiStatusError, RestClient
from tests.fixtures.controllers import JOB_BACKOFF_ARGS, PodSimulator
from tests.integration.test_controllers_deployment import deployment, eventually, live, new_namespace

pytestmark = pytest.mark.integration

# the controllers write as their own ServiceAccounts (as `up` runs them): these tests also
# check the system:controller:* roles of the StatefulSet, DaemonSet, Job, TTL, Endpoints,
# ServiceAccount, namespace and garbage collector controllers
controller_manager_args = [*JOB_BACKOFF_ARGS, "--use-service-account-credentials"]

CONTAINERS = [{"name": "c", "image": "busybox", "ports": [{"name": "http", "containerPort": 8080}]}]


def names(items: list[dict]) -> list[str]:
    return sorted(o["metadata"]["name"] for o in items)


async def test_statefulset_ordered_scale_and_update(apiserver, controller_manager, kubectl, client):
    ns = await new_namespace(client, "sts")
    sim = await PodSimulator(client, ns).start()
    sim.enabled = False
    try:
        ss = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": ns},
              "spec": {"replicas": 3, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                       "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": CONTAINERS}}}}
        await asyncio.to_thread(kubectl, "apply", "-f", "-", input=json.dumps(ss))
        await eventually(lambda: _pods(client, ns, ["db-0"]))
        await asyncio.sleep(1.0)
        assert names(live((await client.list(R.PODS, ns))["items"])) == ["db-0"], "OrderedReady waits for db-0"
        sim.enabled = True
        await eventually(lambda: _pods(client, ns, ["db-0", "db-1", "db-2"]))
        p0 = await client.get(R.PODS, "db-0", ns)
        assert p0["spec"]["hostname"] == "db-0" and p0["spec"]["subdomain"] == "db"
        assert p0["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] == "db-0"
        rev = p0["metadata"]["labels"]["controller-revision-hash"]

        async def status_ready():
            st = (await client.get(R.STATEFULSETS, "db", ns)).get("status") or {}
            return st.get("readyReplicas") == 3 and st.get("updateRevision") == rev
        await eventually(status_ready)

        watch_order: list[str] = []

        async def watch_deletes():
            lst = await client.list(R.PODS, ns)
            async for et, p in client.watch(R.PODS, ns, resource_version=lst["metadata"]["resourceVersion"]):
                if et == "DELETED":
                    watch_order.append(p["metadata"]["name"])
        wt = asyncio.create_task(watch_deletes())
        await asyncio.to_thread(kubectl, "scale", "statefulset/db", "--replicas=1", "-n", ns)
        await eventually(lambda: _pods(client, ns, ["db-0"]))
        await asyncio.sleep(0.3)
        wt.cancel()
        assert watch_order == ["db-2", "db-1"], "scale down in reverse ordinal order"

        await asyncio.to_thread(kubectl, "scale", "statefulset/db", "--replicas=3", "-n", ns)
        await eventually(lambda: _pods(client, ns, ["db-0", "db-1", "db-2"]))
        # rolling update with a partition: only ordinals >= 1 move to the new revision
        await asyncio.to_thread(kubectl, "patch", "statefulset/db", "-n", ns, "--type=merge", "-p",
                json.dumps({"spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}},
                                     "template": {"metadata": {"labels": {"app": "db", "v": "2"}}}}}))

        async def partitioned():
            pods = {p["metadata"]["name"]: p for p in live((await client.list(R.PODS, ns))["items"])}
            if sorted(pods) != ["db-0", "db-1", "db-2"]:
                return None
            v = {n: p["metadata"]["labels"].get("v") for n, p in pods.items()}
            return v == {"db-0": None, "db-1": "2", "db-2": "2"} and all(
                c["status"] == "True" for p in pods.values() for c in p.get("status", {}).get("conditions", []) if c["type"] == "Ready")
        await eventually(partitioned, timeout=60)

        async def partitioned_status():
            # the status is written after the pods move: wait for the controller's next pass
            st = (await client.get(R.STATEFULSETS, "db", ns)).get("status") or {}
            return st.get("updatedReplicas") == 2 and st.get("currentRevision") != st.get("updateRevision")
        await eventually(partitioned_status)
        out = await asyncio.to_thread(kubectl, "rollout", "status", "statefulset/db", "-n", ns, "--timeout=30s", timeout=40)
        assert "partitioned roll out complete" in out.stdout
        # a pod below the partition deleted by hand comes back at the current revision
        old_uid = (await client.get(R.PODS, "db-0", ns))["metadata"]["uid"]
        await asyncio.to_thread(kubectl, "delete", "pod", "db-0", "-n", ns, "--wait=false")

        async def recreated():
            try:
                p = await client.get(R.PODS, "db-0", ns)
            except ApiStatusError:
                return None
            return p if p["metadata"]["uid"] != old_uid and not p["metadata"].get("deletionTimestamp") else None
        p0 = await eventually(recreated)
        assert p0["metadata"]["labels"]["controller-revision-hash"] == rev
        assert "v" not in p0["metadata"]["labels"]
    finally:
        await sim.stop()


async def test_statefulset_rolling_update_without_partition(apiserver, controller_manager, kubectl, client):
    """An explicit ``type: RollingUpdate`` gets no ``rollingUpdate`` block (SetDefaults_StatefulSet):
    ``kubectl rollout status`` reports the revision, and a pod deleted mid-rollout below
    ``status.currentReplicas`` comes back at the current revision."""
    ns = await new_namespace(client, "stsru")
    sim = await PodSimulator(client, ns).start()
    try:
        ss = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": ns},
              "spec": {"replicas": 3, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                       "updateStrategy": {"type": "RollingUpdate"},
                       "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": CONTAINERS}}}}
        await asyncio.to_thread(kubectl, "apply", "-f", "-", input=json.dumps(ss))
        got = await asyncio.to_thread(kubectl, "get", "statefulset/db", "-n", ns, "-o", "jsonpath={.spec.updateStrategy}")
        assert json.loads(got.stdout) == {"type": "RollingUpdate"}
        out = await asyncio.to_thread(kubectl, "rollout", "status", "statefulset/db", "-n", ns, "--timeout=30s", timeout=40)
        assert "statefulset rolling update complete 3 pods at revision db-" in out.stdout, out.stdout
        old_rev = (await client.get(R.PODS, "db-0", ns))["metadata"]["labels"]["controller-revision-hash"]
        sim.enabled = False  # the updated db-2 stays unready: the rollout stops there
        await asyncio.to_thread(kubectl, "set", "image", "statefulset/db", "c=busybox:2", "-n", ns)

        async def stuck():
            st = (await client.get(R.STATEFULSETS, "db", ns)).get("status") or {}
            p2 = live([p for p in (await client.list(R.PODS, ns))["items"] if p["metadata"]["name"] == "db-2"])
            return st.get("currentReplicas") == 2 and st.get("updatedReplicas") == 1 and p2 and \
                p2[0]["metadata"]["labels"]["controller-revision-hash"] != old_rev
        await eventually(stuck)
        old_uid = (await client.get(R.PODS, "db-0", ns))["metadata"]["uid"]
        await asyncio.to_thread(kubectl, "delete", "pod", "db-0", "-n", ns, "--wait=false")

        async def recreated():
            try:
                p = await client.get(R.PODS, "db-0", ns)
            except ApiStatusError:
                return None
            return p if p["metadata"]["uid"] != old_uid and not p["metadata"].get("deletionTimestamp") else None
        p0 = await eventually(recreated)
        assert p0["metadata"]["labels"]["controller-revision-hash"] == old_rev, "below currentReplicas: current revision"
        assert p0["spec"]["containers"][0]["image"] == CONTAINERS[0]["image"]
        sim.enabled = True
        out = await asyncio.to_thread(kubectl, "rollout", "status", "statefulset/db", "-n", ns, "--timeout=30s", timeout=40)
        assert "statefulset rolling update complete 3 pods at revision db-" in out.stdout, out.stdout
        images = {p["spec"]["containers"][0]["image"] for p in live((await client.list(R.PODS, ns))["items"])}
        assert images == {"busybox:2"}
    finally:
        await sim.stop()


async def _pods(client: RestClient, ns: str, want: list[str]) -> bool:
    return names(live((await client.list(R.PODS, ns))["items"])) == want


async def test_statefulset_parallel(apiserver, controller_manager, kubectl, client):
    ns = await new_namespace(client, "stsp")
    ss = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "p", "namespace": ns},
          "spec": {"replicas": 3, "podManagementPolicy": "Parallel", "serviceName": "p",
                   "selector": {"matchLabels": {"app": "p"}},
                   "template": {"metadata": {"labels": {"app": "p"}}, "spec": {"containers": CONTAINERS}}}}
    await asyncio.to_thread(kubectl, "apply", "-f", "-", input=json.dumps(ss))
    await eventually(lambda: _pods(client, ns, ["p-0", "p-1", "p-2"]))  # no readiness needed


def node(name: str, labels: dict | None = None, taints: list | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
            "spec": {"taints": taints or []}}


async def test_daemonset_follows_nodes(apiserver, controller_manager, kubectl, client):
    ns = await new_namespace(client, "ds")
    tag = uuid.uuid4().hex[:6]
    nodes = [f"dsn-{tag}-{i}" for i in range(3)]
    await client.create(R.NODES, node(nodes[0], {"role": f"edge-{tag}"}))
    await client.create(R.NODES, node(nodes[1], {"role": f"edge-{tag}"}, [{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]))
    await client.create(R.NODES, node(nodes[2], {"role": "core"}))
    try:
        dset = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent", "namespace": ns},
                "spec": {"selector": {"matchLabels": {"app": "agent"}},
                         "template": {"metadata": {"labels": {"app": "agent"}},
                                      "spec": {"nodeSelector": {"role": f"edge-{tag}"}, "containers": CONTAINERS}}}}
        await asyncio.to_thread(kubectl, "apply", "-f", "-", input=json.dumps(dset))

        async def on_nodes(want: set[str]):
            pods = live((await client.list(R.PODS, ns))["items"])
            got = {p["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
                   ["nodeSelectorTerms"][0]["matchFields"][0]["values"][0] for p in pods}
            return got == want and len(pods) == len(want)
        await eventually(lambda: on_nodes({nodes[0]}))  # nodes[1] tainted, nodes[2] not selected
        await client.patch(R.NODES, nodes[2], {"metadata": {"labels": {"role": f"edge-{tag}"}}})
        await eventually(lambda: on_nodes({nodes[0], nodes[2]}))
        n3 = f"dsn-{tag}-3"
        nodes.append(n3)
        await client.create(R.NODES, node(n3, {"role": f"edge-{tag}"}))
        await eventually(lambda: on_nodes({nodes[0], nodes[2], n3}))
        await client.delete(R.NODES, nodes[0])
        await eventually(lambda: on_nodes({nodes[2], n3}))
        await asyncio.to_thread(kubectl, "patch", "daemonset/agent", "-n", ns, "--type=merge", "-p", json.dumps(
            {"spec": {"template": {"spec": {"tolerations": [{"key": "dedicated", "operator": "Exists"}]}}}}))
        await eventually(lambda: on_nodes({nodes[1], nodes[2], n3}))

        async def status():
            st = (await client.get(R.DAEMONSETS, "agent", ns)).get("status") or {}
            return st.get("desiredNumberScheduled") == 3 and st.get("currentNumberScheduled") == 3 and st.get("updatedNumberScheduled") == 3
        await eventually(status)
        sim = PodSimulator(client, ns)
        for p in live((await client.list(R.PODS, ns))["items"]):
            await sim.mark(p)
        out = await asyncio.to_thread(kubectl, "rollout", "status", "daemonset/agent", "-n", ns, "--timeout=30s", timeout=40)
        assert "successfully rolled out" in out.stdout
    finally:
        for n in nodes:
            try:
                await client.delete(R.NODES, n)
            except ApiStatusError:
                pass


async def test_daemonset_max_surge(apiserver, controller_manager, kubectl, client):
    """RollingUpdate with maxSurge 1 / maxUnavailable 0: the new pod starts beside the old
    one, the old one goes only once the new one is Ready, one node at a time."""
    ns = await new_namespace(client, "dss")
    tag = uuid.uuid4().hex[:6]
    nodes = [f"dss-{tag}-{i}" for i in range(2)]
    for n in nodes:
        await client.create(R.NODES, node(n, {"role": f"surge-{tag}"}))
    sim = PodSimulator(client, ns)
    try:
        dset = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent", "namespace": ns},
                "spec": {"selector": {"matchLabels": {"app": "agent"}},
                         "updateStrategy": {"type": "RollingUpdate",
                                            "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                         "template": {"metadata": {"labels": {"app": "agent"}},
                                      "spec": {"nodeSelector": {"role": f"surge-{tag}"}, "containers": CONTAINERS}}}}
        await asyncio.to_thread(kubectl, "apply", "-f", "-", input=json.dumps(dset))

        async def pods(n: int):
            ps = live((await client.list(R.PODS, ns))["items"])
            return ps if len(ps) == n else None
        for p in await eventually(lambda: pods(2)):
            await sim.mark(p)
        await asyncio.to_thread(kubectl, "rollout", "status", "daemonset/agent", "-n", ns, "--timeout=20s", timeout=30)
        await asyncio.to_thread(kubectl, "set", "env", "daemonset/agent", "V=2", "-n", ns)
        for _ in nodes:
            ps = await eventually(lambda: pods(3))  # one surge pod next to the two old ones
            await asyncio.sleep(0.5)
            assert len(live((await client.list(R.PODS, ns))["items"])) == 3, "old pod kept until the new one is ready"
            new = [p for p in ps if not (p.get("status") or {}).get("conditions")]
            assert len(new) == 1
            await sim.mark(new[0])
            await eventually(lambda: _old_gone(client, ns, new[0]))
        out = await asyncio.to_thread(kubectl, "rollout", "status", "daemonset/agent", "-n", ns, "--timeout=20s", timeout=30)
        assert "successfully rolled out" in out.stdout
    finally:
        for n in nodes:
            try:
                await client.delete(R.NODES, n)
            except ApiStatusError:
                pass


async def test_daemonset_slow_start_under_quota(apiserver, controller_manager, kubectl, client):
    """Creates in slow-start batches (``syncNodes``): under a quota of 2 pods, 8 nodes get the
    batch of 1, then the batch of 2 whose second create is refused; the 5 creates left are
    skipped (not tried, no longer expected), with a ``FailedCreate`` Event; each later sync
    fails its first batch of one. Once the quota is raised the DaemonSet fills in by itself."""
    ns = await new_namespace(client, "dsq")
    tag = uuid.uuid4().hex[:6]
    nodes = [f"dsq-{tag}-{i}" for i in range(8)]
    for n in nodes:
        await client.create(R.NODES, node(n, {"role": f"quota-{tag}"}))
    try:
        quota = {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "pods", "namespace": ns},
                 "spec": {"hard": {"pods": "2"}}}
        await client.create(R.RESOURCEQUOTAS, quota, ns)

        async def enforced(n: str):
            st = (await client.get(R.RESOURCEQUOTAS, "pods", ns)).get("status") or {}
            return (st.get("hard") or {}).get("pods") == n
        await eventually(lambda: enforced("2"))
        dset = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent", "namespace": ns},
                "spec": {"selector": {"matchLabels": {"app": "agent"}},
                         "template": {"metadata": {"labels": {"app": "agent"}},
                                      "spec": {"nodeSelector": {"role": f"quota-{tag}"}, "containers": CONTAINERS}}}}
        await asyncio.to_thread(kubectl, "apply", "-f", "-", input=json.dumps(dset))

        async def failed_create():
            return [e for e in (await client.list(R.EVENTS, ns))["items"]
                    if e["reason"] == "FailedCreate" and e["type"] == "Warning"]
        events = await eventually(failed_create)
        assert all(e["message"].startswith("Error creating: pods ") and "exceeded quota: pods" in e["message"]
                   for e in events), [e["message"] for e in events]
        assert len(live((await client.list(R.PODS, ns))["items"])) == 2
        # the first sync: batches 1 and 2 tried, the other 5 skipped; later syncs: 1 tried, 5 skipped
        assert controller_manager.wait_log(f'"daemonset": "{ns}/agent"', timeout=10)
        skips = [rec["skipped"] for rec in map(json.loads, (ln for ln in controller_manager.log_path.read_text(
            errors="replace").splitlines() if f'"daemonset": "{ns}/agent"' in ln))
            if rec.get("event", "").startswith("slow-start failure")]
        assert skips and set(skips) == {5}, skips

        await client.patch(R.RESOURCEQUOTAS, "pods", {"spec": {"hard": {"pods": "10"}}}, ns)

        async def everywhere():
            return {_pinned(p) for p in live((await client.list(R.PODS, ns))["items"])} == set(nodes)
        await eventually(everywhere, timeout=60)
        assert len(live((await client.list(R.PODS, ns))["items"])) == 8
    finally:
        for n in nodes:
            try:
                await client.delete(R.NODES, n)
            except ApiStatusError:
                pass


async def test_daemonset_taints_failed_pods_and_template_generation(apiserver, controller_manager, kubectl, client):
    """A NoSchedule taint that the pod does not tolerate keeps the daemon pod there
    (misscheduled), a NoExecute one removes it (NodeShouldRunDaemonPod); a failed daemon pod
    is deleted with a FailedDaemonPod Event and replaced; the template generation annotation
    labels the pods."""
    ns = await new_namespace(client, "dst")
    tag = uuid.uuid4().hex[:6]
    nodes = [f"dst-{tag}-{i}" for i in range(2)]
    for n in nodes:
        await client.create(R.NODES, node(n, {"role": f"taint-{tag}"}))
    sim = await PodSimulator(client, ns).start()
    try:
        dset = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent", "namespace": ns},
                "spec": {"selector": {"matchLabels": {"app": "agent"}},
                         "template": {"metadata": {"labels": {"app": "agent"}},
                                      "spec": {"nodeSelector": {"role": f"taint-{tag}"}, "containers": CONTAINERS}}}}
        await asyncio.to_thread(kubectl, "apply", "-f", "-", input=json.dumps(dset))
        await asyncio.to_thread(kubectl, "rollout", "status", "daemonset/agent", "-n", ns, "--timeout=30s", timeout=40)

        async def on(n: str) -> list[dict]:
            return [p for p in live((await client.list(R.PODS, ns))["items"]) if _pinned(p) == n]
        first = (await on(nodes[0]))[0]
        assert first["metadata"]["labels"]["pod-template-generation"] == "1"
        got = await client.get(R.DAEMONSETS, "agent", ns)
        assert got["metadata"]["annotations"]["deprecated.daemonset.template.generation"] == "1"

        await asyncio.to_thread(kubectl, "taint", "nodes", nodes[0], f"k{tag}=v:NoSchedule")

        async def misscheduled():
            st = (await client.get(R.DAEMONSETS, "agent", ns)).get("status") or {}
            return st.get("numberMisscheduled") == 1 and st.get("desiredNumberScheduled") == 1
        await eventually(misscheduled)
        assert [p["metadata"]["uid"] for p in await on(nodes[0])] == [first["metadata"]["uid"]], "NoSchedule keeps it"
        await asyncio.to_thread(kubectl, "taint", "nodes", nodes[0], f"k{tag}=v:NoExecute")

        async def evicted():
            return not await on(nodes[0])
        await eventually(evicted)

        failed = (await on(nodes[1]))[0]
        await sim.mark(failed, phase="Failed", ready=False)

        async def replaced():
            ps = await on(nodes[1])
            return ps if ps and ps[0]["metadata"]["uid"] != failed["metadata"]["uid"] else None
        await eventually(replaced)
        events = (await client.list(R.EVENTS, ns))["items"]
        assert any(e["reason"] == "FailedDaemonPod" and e["type"] == "Warning" and e["message"] ==
                   f"Found failed daemon pod {ns}/{failed['metadata']['name']} on node {nodes[1]}, will try to kill it"
                   for e in events), [e["message"] for e in events]

        await asyncio.to_thread(kubectl, "set", "image", "daemonset/agent", "c=busybox:2", "-n", ns)

        async def regenerated():
            ps = await on(nodes[1])
            return ps if ps and ps[0]["spec"]["containers"][0]["image"] == "busybox:2" else None
        ps = await eventually(regenerated)
        assert ps[0]["metadata"]["labels"]["pod-template-generation"] == "2"
    finally:
        await sim.stop()
        for n in nodes:
            try:
                await client.delete(R.NODES, n)
            except ApiStatusError:
                pass


def _pinned(p: dict) -> str:
    return p["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"][0]["matchFields"][0]["values"][0]


async def _old_gone(client: RestClient, ns: str, new: dict) -> bool:
    """The old pod beside ``new`` on its node is being deleted (or gone)."""
    target = new["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    same = [p for p in live((await client.list(R.PODS, ns))["items"])
            if p["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"] == target]
    return [p["metadata"]["uid"] for p in same] == [new["metadata"]["uid"]]


async def test_job_ttl_after_finished(apiserver, controller_manager, kubectl, client):
    """``ttlSecondsAfterFinished``: the finished Job and its pods are deleted after the TTL;
    a finished Job without one stays."""
    ns = await new_namespace(client, "ttl")
    for name, ttl in (("short", 1), ("kept", None)):
        j = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": ns},
             "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": CONTAINERS}}}}
        if ttl is not None:
            j["spec"]["ttlSecondsAfterFinished"] = ttl
        await asyncio.to_thread(kubectl, "apply", "-f", "-", input=json.dumps(j))

    async def running():
        return len(live((await client.list(R.PODS, ns))["items"])) == 2
    await eventually(running)
    await _mark_pods(client, ns, "Succeeded", 2)
    # (the short-lived Job may already be gone by the time kubectl looks: wait on the other one)
    await asyncio.to_thread(kubectl, "wait", "--for=condition=complete", "job/kept", "-n", ns,
                            "--timeout=30s", timeout=40)
    await asyncio.to_thread(kubectl, "wait", "--for=delete", "job/short", "-n", ns, "--timeout=30s", timeout=40)

    async def pods_of_short_gone():
        return not [p for p in (await client.list(R.PODS, ns))["items"] if p["metadata"]["labels"].get("job-name") == "short"]
    await eventually(pods_of_short_gone)
    assert (await client.get(R.JOBS, "kept", ns))["metadata"]["name"] == "kept"


async def test_job_on_failure_restarts_count_against_backoff_limit(apiserver, controller_manager, kubectl, client):
    """restartPolicy OnFailure: the pod stays Running while its container restarts; the
    restarts reaching ``backoffLimit`` fail the Job (``pastBackoffLimitOnFailure``)."""
    ns = await new_namespace(client, "onf")
    j = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "crash", "namespace": ns},
         "spec": {"backoffLimit": 2, "template": {"spec": {"restartPolicy": "OnFailure", "containers": CONTAINERS}}}}
    await asyncio.to_thread(kubectl, "apply", "-f", "-", input=json.dumps(j))

    async def one_pod():
        ps = live((await client.list(R.PODS, ns))["items"])
        return ps[0] if len(ps) == 1 else None
    p = await eventually(one_pod)
    name = CONTAINERS[0]["name"]
    for restarts in (1, 2):
        await client.patch(R.PODS, p["metadata"]["name"], {"status": {"phase": "Running", "containerStatuses": [
            {"name": name, "image": CONTAINERS[0]["image"], "imageID": "", "ready": False, "restartCount": restarts,
             "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}}, ns, subresource="status")
        if restarts == 1:
            await asyncio.sleep(0.5)
            conds = ((await client.get(R.JOBS, "crash", ns)).get("status") or {}).get("conditions") or []
            assert not [c for c in conds if c["type"] in ("Failed", "FailureTarget")], conds
    await asyncio.to_thread(kubectl, "wait", "--for=condition=failed", "job/crash", "-n", ns, "--timeout=30s", timeout=40)
    conds = {c["type"]: c for c in (await client.get(R.JOBS, "crash", ns))["status"]["conditions"]}
    assert (conds["Failed"]["reason"], conds["Failed"]["message"]) == (
        "BackoffLimitExceeded", "Job has reached the specified backoff limit")


async def _mark_pods(client: RestClient, ns: str, phase: str, limit: int) -> int:
    sim = PodSimulator(client, ns, phase=phase, ready=False)
    n = 0
    for p in live((await client.list(R.PODS, ns))["items"]):
        if (p.get("status") or {}).get("phase") in ("Succeeded", "Failed") or n >= limit:
            continue
        await sim.mark(p, phase=phase)
        n += 1
    return n


async def test_job_completions_and_backoff(apiserver, controller_manager, kubectl, client):
    ns = await new_namespace(client, "job")
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "work", "namespace": ns},
           "spec": {"completions": 3, "parallelism": 2, "backoffLimit": 1,
                    "template": {"spec": {"restartPolicy": "Never", "containers": CONTAINERS}}}}
    await asyncio.to_thread(kubectl, "apply", "-f", "-", input=json.dumps(job))

    async def active(n):
        pods = [p for p in live((await client.list(R.PODS, ns))["items"]) if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
        return pods if len(pods) == n else None
    pods = await eventually(lambda: active(2))
    assert all(p["metadata"]["labels"]["job-name"] == "work" for p in pods)
    assert all(p["metadata"]["labels"]["batch.kubernetes.io/job-name"] == "work" for p in pods)
    await _mark_pods(client, ns, "Succeeded", 2)
    await eventually(lambda: active(1))
    await _mark_pods(client, ns, "Succeeded", 1)

    async def complete():
        j = await client.get(R.JOBS, "work", ns)
        conds = {c["type"]: c["status"] for c in (j.get("status") or {}).get("conditions") or []}
        return j if conds.get("Complete") == "True" else None
    j = await eventually(complete)
    assert j["status"]["succeeded"] == 3 and j["status"].get("completionTime")
    out = await asyncio.to_thread(kubectl, "wait", "--for=condition=complete", "job/work", "-n", ns, "--timeout=10s")
    assert "condition met" in out.stdout

    bad = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "bad", "namespace": ns},
           "spec": {"backoffLimit": 1, "template": {"spec": {"restartPolicy": "Never", "containers": CONTAINERS}}}}
    await asyncio.to_thread(kubectl, "apply", "-f", "-", input=json.dumps(bad))

    async def bad_failed():
        pods = [p for p in live((await client.list(R.PODS, ns))["items"]) if p["metadata"]["labels"].get("job-name") == "bad"]
        for p in pods:
            if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
                await PodSimulator(client, ns).mark(p, phase="Failed", ready=False)
        j = await client.get(R.JOBS, "bad", ns)
        conds = {c["type"]: c for c in (j.get("status") or {}).get("conditions") or []}
        return conds.get("Failed")
    cond = await eventually(bad_failed, timeout=40, interval=0.3)
    assert cond["reason"] == "BackoffLimitExceeded"
    assert (await client.get(R.JOBS, "bad", ns))["status"]["failed"] == 2

    deadline = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "slow", "namespace": ns},
                "spec": {"activeDeadlineSeconds": 1, "template": {"spec": {"restartPolicy": "Never", "containers": CONTAINERS}}}}
    await asyncio.to_thread(kubectl, "apply", "-f", "-", input=json.dumps(deadline))

    async def deadline_exceeded():
        j = await client.get(R.JOBS, "slow", ns)
        conds = {c["type"]: c for c in (j.get("status") or {}).get("conditions") or []}
        return conds.get("Failed")
    assert (await eventually(deadline_exceeded, timeout=20))["reason"] == "DeadlineExceeded"


async def test_statefulset_and_daemonset_history_rollout_undo(apiserver, controller_manager, kubectl, client):
    """ControllerRevisions: ``kubectl rollout history`` lists them, ``kubectl rollout undo``
    brings the previous template back (its revision moves to the newest number)."""
    ns = await new_namespace(client, "hist")
    sim = await PodSimulator(client, ns).start()
    try:
        ss = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": ns},
              "spec": {"replicas": 1, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                       "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": CONTAINERS}}}}
        await asyncio.to_thread(kubectl, "apply", "-f", "-", input=json.dumps(ss))

        async def revisions(n):
            items = (await client.list(R.CONTROLLERREVISIONS, ns))["items"]
            mine = sorted((r for r in items if r["metadata"]["ownerReferences"][0]["name"] == "db"),
                          key=lambda r: r["revision"])
            return mine if len(mine) == n else None
        first = (await eventually(lambda: revisions(1)))[0]
        assert first["revision"] == 1 and first["data"]["spec"]["template"]["$patch"] == "replace"
        await asyncio.to_thread(kubectl, "set", "image", "statefulset/db", "c=busybox:2", "-n", ns)
        revs = await eventually(lambda: revisions(2))

        async def update_revision():
            st = (await client.get(R.STATEFULSETS, "db", ns)).get("status") or {}
            return st.get("updateRevision") == revs[1]["metadata"]["name"]
        await eventually(update_revision)
        out = (await asyncio.to_thread(kubectl, "rollout", "history", "statefulset/db", "-n", ns)).stdout
        assert "REVISION" in out and [ln.split()[0] for ln in out.splitlines()[2:] if ln.strip()] == ["1", "2"], out
        out = (await asyncio.to_thread(kubectl, "get", "controllerrevisions", "-n", ns)).stdout.splitlines()
        assert out[0].split() == ["NAME", "CONTROLLER", "REVISION", "AGE"]
        assert any(f"statefulset.apps/db" in ln for ln in out[1:]), out
        res = await asyncio.to_thread(kubectl, "rollout", "undo", "statefulset/db", "-n", ns)
        assert "rolled back" in res.stdout, res.stdout + res.stderr

        async def rolled_back():
            got = await client.get(R.STATEFULSETS, "db", ns)
            image = got["spec"]["template"]["spec"]["containers"][0]["image"]
            items = await revisions(2)
            return image == CONTAINERS[0]["image"] and items and items[-1]["metadata"]["name"] == first["metadata"]["name"] \
                and items[-1]["revision"] == 3 and items
        await eventually(rolled_back)

        ds = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent", "namespace": ns},
              "spec": {"selector": {"matchLabels": {"app": "agent"}},
                       "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {"containers": CONTAINERS}}}}
        await asyncio.to_thread(kubectl, "apply", "-f", "-", input=json.dumps(ds))
        await asyncio.to_thread(kubectl, "set", "image", "daemonset/agent", "c=busybox:3", "-n", ns)

        async def ds_revisions():
            items = (await client.list(R.CONTROLLERREVISIONS, ns, label_selector="app=agent"))["items"]
            return items if len(items) == 2 else None
        await eventually(ds_revisions)
        out = (await asyncio.to_thread(kubectl, "rollout", "history", "daemonset/agent", "-n", ns)).stdout
        assert [ln.split()[0] for ln in out.splitlines()[2:] if ln.strip()] == ["1", "2"], out
        await asyncio.to_thread(kubectl, "rollout", "undo", "daemonset/agent", "-n", ns)

        async def ds_rolled_back():
            got = await client.get(R.DAEMONSETS, "agent", ns)
            return got["spec"]["template"]["spec"]["containers"][0]["image"] == CONTAINERS[0]["image"]
        await eventually(ds_rolled_back)
    finally:
        await sim.stop()


async def test_indexed_job(apiserver, controller_manager, kubectl, client):
    ns = await new_namespace(client, "ijob")
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "shard", "namespace": ns},
           "spec": {"completions": 4, "parallelism": 2, "completionMode": "Indexed", "backoffLimit": 3,
                    "template": {"spec": {"restartPolicy": "Never", "containers": CONTAINERS}}}}
    await asyncio.to_thread(kubectl, "apply", "-f", "-", input=json.dumps(job))
    key = "batch.kubernetes.io/job-completion-index"

    async def running(indexes):
        pods = [p for p in live((await client.list(R.PODS, ns))["items"])
                if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
        return pods if sorted(int(p["metadata"]["annotations"][key]) for p in pods) == indexes else None
    pods = await eventually(lambda: running([0, 1]))
    for p in pods:
        i = p["metadata"]["annotations"][key]
        assert p["metadata"]["labels"][key] == i and p["metadata"]["name"].startswith(f"shard-{i}-")
        assert p["spec"]["hostname"] == f"shard-{i}"
        assert {"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
            "apiVersion": "v1", "fieldPath": f"metadata.annotations['{key}']"}}} in p["spec"]["containers"][0]["env"]
    by_index = {int(p["metadata"]["annotations"][key]): p for p in pods}
    sim = PodSimulator(client, ns, ready=False)
    # index 1 fails: it runs again (a new pod for index 1); index 0 succeeds
    await sim.mark(by_index[1], phase="Failed")
    await sim.mark(by_index[0], phase="Succeeded")
    pods = await eventually(lambda: running([1, 2]))

    async def completed(text):
        j = await client.get(R.JOBS, "shard", ns)
        return j if (j.get("status") or {}).get("completedIndexes") == text else None
    await eventually(lambda: completed("0"))
    for p in pods:
        await sim.mark(p, phase="Succeeded")
    pods = await eventually(lambda: running([3]))
    await eventually(lambda: completed("0-2"))
    await sim.mark(pods[0], phase="Succeeded")

    async def complete():
        j = await client.get(R.JOBS, "shard", ns)
        conds = {c["type"]: c["status"] for c in (j.get("status") or {}).get("conditions") or []}
        return j if conds.get("Complete") == "True" else None
    j = await eventually(complete)
    assert j["status"]["completedIndexes"] == "0-3" and j["status"]["succeeded"] == 4 and j["status"]["failed"] == 1

    # Indexed needs completions (defaulted to 1 only when parallelism is unset too): 422
    bad = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "nocount", "namespace": ns},
           "spec": {"completionMode": "Indexed", "parallelism": 2,
                    "template": {"spec": {"restartPolicy": "Never", "containers": CONTAINERS}}}}
    res = await asyncio.to_thread(kubectl, "apply", "-f", "-", input=json.dumps(bad), check=False)
    assert res.returncode != 0 and "spec.completions: Required value: when completion mode is Indexed" in res.stderr


async def test_endpoints_and_service_account(apiserver, controller_manager, kubectl, client):
    ns = await new_namespace(client, "svc")
    await eventually(lambda: _exists(client, R.SERVICEACCOUNTS, "default", ns))
    await client.delete(R.SERVICEACCOUNTS, "default", ns)
    await eventually(lambda: _exists(client, R.SERVICEACCOUNTS, "default", ns))

    sim = await PodSimulator(client, ns).start()
    try:
        d = deployment("api", ns, 2)
        d["spec"]["template"]["spec"]["containers"] = CONTAINERS
        await asyncio.to_thread(kubectl, "apply", "-f", "-", input=json.dumps(d))
        svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api", "namespace": ns},
               "spec": {"selector": {"app": "api"}, "ports": [{"name": "web", "port": 80, "targetPort": "http"}]}}
        await asyncio.to_thread(kubectl, "apply", "-f", "-", input=json.dumps(svc))

        async def endpoints(ready: int, not_ready: int):
            try:
                ep = await client.get(R.ENDPOINTS, "api", ns)
            except ApiStatusError:
                return None
            subsets = ep.get("subsets") or []
            r = sum(len(s.get("addresses") or []) for s in subsets)
            nr = sum(len(s.get("notReadyAddresses") or []) for s in subsets)
            return ep if (r, nr) == (ready, not_ready) else None
        ep = await eventually(lambda: endpoints(2, 0))
        assert ep["subsets"][0]["ports"] == [{"name": "web", "port": 8080, "protocol": "TCP"}]
        pod = live((await client.list(R.PODS, ns))["items"])[0]
        await sim.mark(pod, ready=False)
        await eventually(lambda: endpoints(1, 1))
    finally:
        await sim.stop()


async def _exists(client: RestClient, res, name: str, ns: str | None) -> bool:
    try:
        await client.get(res, name, ns)
        return True
    except ApiStatusError as e:
        if e.not_found:
            return False
        raise


async def test_namespace_deletion_empties_it(apiserver, controller_manager, kubectl, client):
    ns = await new_namespace(client, "doomed")
    await asyncio.to_thread(kubectl, "apply", "-f", "-", input=json.dumps(deployment("d", ns, 2)))
    await client.create(R.CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": ns},
                                       "data": {"a": "b"}}, ns)
    await client.create(R.PODTEMPLATES, {"apiVersion": "v1", "kind": "PodTemplate",
                                         "metadata": {"name": "tmpl", "namespace": ns},
                                         "template": {"spec": {"containers": CONTAINERS}}}, ns)
    await eventually(lambda: _count(client, R.PODS, ns, 2))
    # the controllers' Events (SuccessfulCreate, ScalingReplicaSet) go with the namespace too
    await eventually(lambda: _some(client, R.EVENTS, ns))
    await asyncio.to_thread(kubectl, "delete", "namespace", ns, "--timeout=60s", timeout=70)
    assert not await _exists(client, R.NAMESPACES, ns, None)
    for res in (R.PODS, R.REPLICASETS, R.DEPLOYMENTS, R.CONFIGMAPS, R.SERVICEACCOUNTS, R.PODTEMPLATES, R.EVENTS):
        assert (await client.list(res, ns))["items"] == []


async def test_csinode_goes_with_its_node(apiserver, controller_manager, client):
    """The kubelet's CSINode is owned by its Node: the garbage collector deletes it with the Node."""
    name = f"csin-{uuid.uuid4().hex[:6]}"
    n = await client.create(R.NODES, node(name))
    await client.create(R.CSINODES, {"apiVersion": "storage.k8s.io/v1", "kind": "CSINode", "metadata": {
        "name": name, "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": name,
                                           "uid": n["metadata"]["uid"]}]}, "spec": {"drivers": []}})
    await client.delete(R.NODES, name)
    await eventually(lambda: _gone(client, R.CSINODES, name))


async def _gone(client: RestClient, res, name: str) -> bool:
    return not await _exists(client, res, name, None)


async def _some(client: RestClient, res, ns: str) -> bool:
    return bool((await client.list(res, ns))["items"])


async def _count(client: RestClient, res, ns: str, n: int) -> bool:
    return len(live((await client.list(res, ns))["items"])) == n
