"""PodDisruptionBudgets end to end: the disruption controller keeps their status, the Eviction
API honours them, and the real ``kubectl drain`` stops at a budget (real etcd, apiserver,
controller-manager, kubectl; pods marked Ready by the test's ``PodSimulator``)."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from controlplane.client import resources as R
from controlplane.client.rest import ApiStatusError, RestClient
from tests.fixtures.controllers import PodSimulator
from tests.integration.test_controllers_deployment import deployment, eventually, live, new_namespace

pytestmark = pytest.mark.integration


async def evict(client: RestClient, ns: str, name: str, **opts) -> tuple[int, dict]:
    body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": ns}}
    if opts:
        body["deleteOptions"] = opts
    try:
        out = await client.request("POST", R.PODS.path(ns, name, "eviction"), body=body)
        return 201, out
    except ApiStatusError as e:
        return e.code, e.status


def pdb_status(client: RestClient, ns: str, name: str = "web-pdb"):
    async def get() -> dict:
        return (await client.get(R.PODDISRUPTIONBUDGETS, name, ns)).get("status") or {}
    return get


def condition(st: dict) -> tuple[str, str]:
    c = next((c for c in st.get("conditions") or [] if c["type"] == "DisruptionAllowed"), {})
    return c.get("status", ""), c.get("reason", "")


async def test_budget_status_eviction_and_kubectl_drain(apiserver, controller_manager, kubectl, client):
    ns = await new_namespace(client, "pdb")
    # a Node object for the pods (no agent: the test plays the kubelet's part), removed at the end
    node = f"pdb-node-{uuid.uuid4().hex[:6]}"
    await client.create(R.NODES, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": node}})
    sim = await PodSimulator(client, ns).start()
    try:
        dep = deployment("web", ns, 3)
        dep["spec"]["template"]["spec"]["nodeName"] = node
        await asyncio.to_thread(kubectl, "apply", "-f", "-", input=json.dumps(dep))

        async def three_ready():
            pods = live((await client.list(R.PODS, ns))["items"])
            ready = [p for p in pods if any(c["type"] == "Ready" and c["status"] == "True"
                                            for c in (p.get("status") or {}).get("conditions") or [])]
            return len(ready) == 3 and len(pods) == 3 and pods
        originals = sorted(p["metadata"]["name"] for p in await eventually(three_ready))

        # the budget through kubectl, and its status from the controller
        await asyncio.to_thread(kubectl, "create", "pdb", "web-pdb", "--selector=app=web", "--min-available=2", "-n", ns)

        async def allows_one():
            st = await pdb_status(client, ns)()
            return st.get("disruptionsAllowed") == 1 and st
        st = await eventually(allows_one)
        assert (st["expectedPods"], st["currentHealthy"], st["desiredHealthy"]) == (3, 3, 2)
        assert condition(st) == ("True", "SufficientPods") and st["observedGeneration"] == 1
        out = (await asyncio.to_thread(kubectl, "get", "pdb", "web-pdb", "-n", ns)).stdout.split("\n")
        assert out[0].split() == ["NAME", "MIN", "AVAILABLE", "MAX", "UNAVAILABLE", "ALLOWED", "DISRUPTIONS", "AGE"]
        assert out[1].split()[:4] == ["web-pdb", "2", "N/A", "1"]

        # no more pods become ready: one eviction is allowed, the next is refused with 429
        sim.enabled = False
        code, _ = await evict(client, ns, originals[0])
        assert code == 201
        gone = await client.get(R.PODS, originals[0], ns)
        assert gone["metadata"].get("deletionTimestamp"), "evicted: deleted gracefully (no kubelet confirms it)"
        target = next(c for c in gone["status"]["conditions"] if c["type"] == "DisruptionTarget")
        assert (target["status"], target["reason"], target["message"]) == ("True", "EvictionByEvictionAPI",
                                                                           "Eviction API: evicting")
        code, status = await evict(client, ns, originals[1])
        assert code == 429, status
        assert status["reason"] == "TooManyRequests"
        assert status["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
        assert status["details"]["causes"][0]["reason"] == "DisruptionBudget"
        assert "The disruption budget web-pdb needs 2 healthy pods and has" in status["details"]["causes"][0]["message"]

        async def settled():
            st = await pdb_status(client, ns)()
            return st.get("currentHealthy") == 2 and st
        st = await eventually(settled)
        assert st["disruptionsAllowed"] == 0 and condition(st) == ("False", "InsufficientPods")
        assert originals[0] not in (st.get("disruptedPods") or {}), "a pod being deleted leaves disruptedPods"

        # the real kubectl drain: cordons the node, evicts, retries on 429 until its timeout
        res = await asyncio.to_thread(kubectl, "drain", node, "--ignore-daemonsets", "--grace-period=0",
                                      "--timeout=12s", check=False, timeout=60)
        assert res.returncode != 0, res.stdout + res.stderr
        assert "Cannot evict pod as it would violate the pod's disruption budget." in res.stderr, res.stderr
        assert (await client.get(R.NODES, node))["spec"].get("unschedulable") is True
        left = {p["metadata"]["name"] for p in live((await client.list(R.PODS, ns))["items"])}
        assert {originals[1], originals[2]} <= left, "the budget kept both remaining ready pods"

        # a replacement becomes ready: the budget allows one more, and drain evicts exactly one
        sim.enabled = True
        await eventually(allows_one)
        res = await asyncio.to_thread(kubectl, "drain", node, "--ignore-daemonsets", "--grace-period=0",
                                      "--timeout=12s", check=False, timeout=60)
        assert "evicted" in res.stdout, res.stdout + res.stderr
        left_after = {p["metadata"]["name"] for p in live((await client.list(R.PODS, ns))["items"])}
        assert len({originals[1], originals[2]} - left_after) >= 1
    finally:
        await sim.stop()
        await client.delete(R.NODES, node)


async def test_percentages_unmanaged_pods_and_bad_budgets(apiserver, controller_manager, kubectl, client):
    ns = await new_namespace(client, "pdbx")
    sim = await PodSimulator(client, ns).start()
    try:
        await asyncio.to_thread(kubectl, "apply", "-f", "-", input=json.dumps(deployment("api", ns, 3)))
        # maxUnavailable as a percentage: scaled (rounded up) against the Deployment's 3 replicas
        await asyncio.to_thread(kubectl, "create", "pdb", "api-pdb", "--selector=app=api", "--max-unavailable=34%",
                                "-n", ns)

        async def scaled():
            st = await pdb_status(client, ns, "api-pdb")()
            return st.get("currentHealthy") == 3 and st
        st = await eventually(scaled)
        assert (st["expectedPods"], st["desiredHealthy"], st["disruptionsAllowed"]) == (3, 1, 2)

        # a bare pod under a percentage budget: reported as unmanaged (an Event), not counted
        bare = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bare", "labels": {"app": "solo"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
        await client.create(R.PODS, bare, ns)
        await asyncio.to_thread(kubectl, "create", "pdb", "solo-pdb", "--selector=app=solo", "--max-unavailable=50%",
                                "-n", ns)

        async def unmanaged_event():
            evs = (await client.list(R.EVENTS, ns))["items"]
            return [e for e in evs if e["reason"] == "UnmanagedPods" and e["involvedObject"]["name"] == "solo-pdb"]
        ev = (await eventually(unmanaged_event))[0]
        assert ev["type"] == "Warning" and "were found to be unmanaged" in ev["message"]

        # a pod whose controller has no scale (a ConfigMap here): the budget fails safe, nothing
        # may be disrupted
        owner = await client.create(R.CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap",
                                                   "metadata": {"name": "ghost-owner"}}, ns)
        orphan = {"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": "orphan", "labels": {"app": "ghost"},
            "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "ghost-owner",
                                 "uid": owner["metadata"]["uid"], "controller": True}]},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
        await client.create(R.PODS, orphan, ns)
        await asyncio.to_thread(kubectl, "create", "pdb", "ghost-pdb", "--selector=app=ghost", "--min-available=50%",
                                "-n", ns)

        async def failed_safe():
            st = await pdb_status(client, ns, "ghost-pdb")()
            return condition(st)[1] == "SyncFailed" and st
        st = await eventually(failed_safe)
        assert st["disruptionsAllowed"] == 0
        assert 'found no controllers for pod "orphan"' in next(c for c in st["conditions"])["message"]

        async def failed_event():
            evs = (await client.list(R.EVENTS, ns))["items"]
            return [e for e in evs if e["reason"] == "CalculateExpectedPodCountFailed"]
        assert (await eventually(failed_event))[0]["involvedObject"]["name"] == "ghost-pdb"
        code, status = await evict(client, ns, "orphan")
        assert code == 429 and status["reason"] == "TooManyRequests", status

        # two budgets over one pod: the Eviction API refuses (500, as Kubernetes), nothing deleted
        await asyncio.to_thread(kubectl, "create", "pdb", "api-pdb-2", "--selector=app=api", "--min-available=1",
                                "-n", ns)
        name = live((await client.list(R.PODS, ns, label_selector="app=api"))["items"])[0]["metadata"]["name"]
        code, status = await evict(client, ns, name)
        assert code == 500, status
        assert status["message"] == ("This pod has more than one PodDisruptionBudget, which the eviction subresource "
                                     "does not support.")
        assert not (await client.get(R.PODS, name, ns))["metadata"].get("deletionTimestamp")

        # a finished pod is evicted without consulting any budget; a missing one is 404
        await client.patch(R.PODS, "orphan", {"status": {"phase": "Succeeded"}}, ns, subresource="status")
        code, _ = await evict(client, ns, "orphan")
        assert code == 201
        code, status = await evict(client, ns, "no-such-pod")
        assert code == 404 and status["reason"] == "NotFound"
    finally:
        await sim.stop()
