"""The node agent against the real apiserver, real runc and a real registry: node registration,
lease and CSINode, pod lifecycle and status, logs and exec through the agent endpoint, restarts."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import aiohttp
import pytest

from controlplane.client.resources import CSINODES, EVENTS, LEASES, NAMESPACES, NODES, PODS
from controlplane.client.rest import ApiStatusError
from tests.fixtures.agent import push_corrupt_image

pytestmark = [pytest.mark.integration, pytest.mark.runc, pytest.mark.timeout(180),
              pytest.mark.asyncio(loop_scope="session")]


@pytest.fixture
async def ns(client):
    name = f"t-{uuid.uuid4().hex[:8]}"
    await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name


async def wait_for(fn, timeout: float = 60, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = await fn()
        except ApiStatusError as e:
            last = e
        if last and not isinstance(last, ApiStatusError):
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last={last!r}")


async def ready_node(client, node: str, agent) -> dict:
    async def check():
        assert agent.alive(), agent.log_tail()
        n = await client.get(NODES, node)
        conds = {c["type"]: c["status"] for c in n.get("status", {}).get("conditions", [])}
        return n if conds.get("Ready") == "True" else None
    return await wait_for(check, 60, what=f"node {node} Ready")


def pod(name: str, node: str, containers: list[dict], **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": node, "containers": containers, "terminationGracePeriodSeconds": 2, **spec}}


async def pod_where(client, ns, name, pred, timeout=60, what="pod state"):
    seen: list[dict] = []

    async def check():
        p = await client.get(PODS, name, ns)
        seen[:] = [p]
        return p if pred(p) else None
    try:
        return await wait_for(check, timeout, what=what)
    except AssertionError as e:  # say what the pod looked like last
        raise AssertionError(f"{e}; pod status={seen[0].get('status') if seen else None!r}") from None


def cstatus(p: dict, name: str | None = None) -> dict:
    cs = p.get("status", {}).get("containerStatuses") or [{}]
    return next((c for c in cs if c.get("name") == name), cs[0]) if name else cs[0]


async def agent_get(agent, node_obj, path: str) -> tuple[int, str]:
    port = node_obj["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
    tls = aiohttp.TCPConnector(ssl=agent.api.ssl_context())  # the admin, checked by the agent through RBAC
    async with aiohttp.ClientSession(connector=tls) as s:
        async with s.get(f"https://127.0.0.1:{port}{path}") as r:
            return r.status, await r.text()


async def test_node_registration_lease_and_a_running_pod(client, ns, start_agent, kubectl):
    agent = start_agent()
    node = await ready_node(client, agent.node, agent)
    labels = node["metadata"]["labels"]
    assert labels["kubernetes.io/hostname"] == agent.node and labels["kubernetes.io/os"] == "linux"
    assert labels["kubernetes.io/arch"] in ("amd64", "arm64")
    st = node["status"]
    assert int(st["capacity"]["cpu"]) >= 1 and st["capacity"]["memory"].endswith("Ki")
    assert {c["type"] for c in st["conditions"]} >= {"Ready", "MemoryPressure", "DiskPressure", "PIDPressure"}
    assert st["nodeInfo"]["operatingSystem"] == "linux"
    async def node_events():  # the kubelet's: Starting, then each condition's state
        evs = (await client.list(EVENTS, "default", field_selector=f"involvedObject.name={agent.node}"))["items"]
        got = {e["reason"]: e for e in evs if (e.get("source") or {}).get("component") == "kubelet"}
        want = {"Starting", "NodeHasSufficientMemory", "NodeHasNoDiskPressure", "NodeHasSufficientPID", "NodeReady"}
        return got if want <= set(got) else None
    evs = await wait_for(node_events, 20, what="the kubelet's node events")
    assert evs["Starting"]["message"] == "Starting kubelet."
    assert evs["NodeReady"]["message"] == f"Node {agent.node} status is now: NodeReady"
    assert evs["NodeReady"]["involvedObject"]["kind"] == "Node" and evs["NodeReady"]["involvedObject"]["uid"] == agent.node
    lease = await client.get(LEASES, agent.node, "kube-node-lease")
    assert lease["spec"]["holderIdentity"] == agent.node and lease["spec"]["renewTime"]
    # the kubelet's CSINode: named like the Node, owned by it, no drivers
    csinode = await client.get(CSINODES, agent.node)
    assert csinode["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Node", "name": agent.node, "uid": node["metadata"]["uid"]}]
    out = kubectl("get", "csinode", agent.node).stdout.split()
    assert out[:5] == ["NAME", "DRIVERS", "AGE", agent.node, "0"], out

    await client.create(PODS, pod("web", agent.node, [{
        "name": "main", "image": "busybox",
        "command": ["sh", "-c", "echo started $POD_NAME in $POD_NS; cat /etc/hostname; while true; do sleep 1; done"],
        "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "POD_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}],
        "resources": {"limits": {"cpu": "200m", "memory": "64Mi"}}}]), ns)
    p = await pod_where(client, ns, "web", lambda p: p.get("status", {}).get("phase") == "Running"
                        and cstatus(p).get("ready"), what="web Running+ready")
    s = p["status"]
    assert s["podIP"] and s["hostIP"] == "127.0.0.1" and s["qosClass"] == "Guaranteed"
    conds = {c["type"]: c["status"] for c in s["conditions"]}
    assert conds["Ready"] == conds["ContainersReady"] == conds["Initialized"] == conds["PodScheduled"] == "True"
    c = cstatus(p)
    assert "running" in c["state"] and c["restartCount"] == 0 and c["containerID"].startswith("runc://")
    assert c["imageID"].startswith("docker.io/library/busybox@sha256:") and c["started"] is True

    async def logs_ready():
        code, text = await agent_get(agent, node, f"/containerLogs/{ns}/web/main")
        return text if code == 200 and "web" in text.splitlines()[-1:] else None
    text = await wait_for(logs_ready, 20, what="logs")
    assert text.splitlines() == [f"started web in {ns}", "web"]
    code, _ = await agent_get(agent, node, f"/containerLogs/{ns}/web/nope")
    assert code == 400
    async def in_summary():  # the Summary API samples at most once a second (as cAdvisor's housekeeping)
        code, body = await agent_get(agent, node, "/stats/summary")
        summary = json.loads(body) if code == 200 else {"pods": []}
        web = next((p for p in summary["pods"] if p["podRef"]["name"] == "web"), None)
        return (summary, web) if web is not None else None
    summary, web = await wait_for(in_summary, 20, what="web in /stats/summary")
    assert web["containers"][0]["memory"]["workingSetBytes"] > 0 and "rxBytes" in web["network"]
    assert summary["node"]["fs"]["capacityBytes"] > 0
    code, metrics = await agent_get(agent, node, "/metrics")
    assert "kubelet_running_pods 1.0" in metrics and "kubelet_pod_start_duration_seconds_count 1.0" in metrics

    async def kubelet_events():  # as the kubelet records a container's start
        evs = (await client.list(EVENTS, ns, field_selector="involvedObject.name=web"))["items"]
        evs = [e for e in evs if (e.get("source") or {}).get("component") == "kubelet"]
        return evs if {"Pulled", "Created", "Started"} <= {e["reason"] for e in evs} else None
    evs = {e["reason"]: e["message"] for e in await wait_for(kubelet_events, 20, what="kubelet events")}
    assert evs["Created"] == "Created container: main" and evs["Started"] == "Started container main", evs
    assert evs["Pulled"].startswith('Successfully pulled image "busybox" in ') or \
        evs["Pulled"] == 'Container image "busybox" already present on machine', evs

    await client.delete(PODS, "web", ns)

    async def gone():
        try:
            await client.get(PODS, "web", ns)
        except ApiStatusError as e:
            return e.not_found
        return False
    await wait_for(gone, 30, what="pod deleted by the agent")


async def test_restart_policies_exit_codes_and_crashloop(client, ns, start_agent):
    agent = start_agent(extra=["--crashloop-initial", "1", "--crashloop-cap", "4"])
    await ready_node(client, agent.node, agent)
    await client.create(PODS, pod("once", agent.node, [{"name": "c", "image": "busybox", "command": ["sh", "-c", "exit 3"]}],
                                  restartPolicy="Never"), ns)
    await client.create(PODS, pod("ok", agent.node, [{"name": "c", "image": "busybox", "command": ["true"]}],
                                  restartPolicy="OnFailure"), ns)
    await client.create(PODS, pod("crash", agent.node, [{"name": "c", "image": "busybox", "command": ["sh", "-c", "echo boom; exit 1"]}]), ns)
    p = await pod_where(client, ns, "once", lambda p: p.get("status", {}).get("phase") == "Failed", what="once Failed")
    t = cstatus(p)["state"]["terminated"]
    assert t["exitCode"] == 3 and t["reason"] == "Error" and cstatus(p)["restartCount"] == 0
    p = await pod_where(client, ns, "ok", lambda p: p.get("status", {}).get("phase") == "Succeeded", what="ok Succeeded")
    assert cstatus(p)["state"]["terminated"]["reason"] == "Completed"
    ready = {c["type"]: c for c in p["status"]["conditions"]}["Ready"]
    assert ready["status"] == "False" and ready["reason"] == "PodCompleted"
    p = await pod_where(client, ns, "crash", lambda p: cstatus(p).get("restartCount", 0) >= 3
                        and cstatus(p)["state"].get("waiting", {}).get("reason") == "CrashLoopBackOff",
                        timeout=90, what="CrashLoopBackOff with restarts")
    c = cstatus(p)
    assert c["lastState"]["terminated"]["exitCode"] == 1
    assert "back-off" in c["state"]["waiting"]["message"]
    assert p["status"]["phase"] == "Running"


async def test_missing_command_and_missing_image_are_clear(client, ns, start_agent, local_registry):
    agent = start_agent(extra=["--crashloop-initial", "30"])
    await ready_node(client, agent.node, agent)
    digest = push_corrupt_image(local_registry, f"corrupt/{ns}")
    await client.create(PODS, pod("badblob", agent.node, [{"name": "c", "image": f"{local_registry.host}/corrupt/{ns}:v1"}]), ns)
    await client.create(PODS, pod("nocmd", agent.node, [{"name": "c", "image": "busybox", "command": ["/no/such/binary"]}],
                                  restartPolicy="Never"), ns)
    await client.create(PODS, pod("noimg", agent.node, [{"name": "c", "image": "does-not-exist:v9"}]), ns)
    p = await pod_where(client, ns, "nocmd", lambda p: p.get("status", {}).get("phase") == "Failed", what="nocmd Failed")
    t = cstatus(p)["state"]["terminated"]
    assert t["reason"] == "StartError" and t["exitCode"] == 128 and "/no/such/binary" in t["message"]
    p = await pod_where(client, ns, "noimg", lambda p: cstatus(p).get("state", {}).get("waiting", {}).get("reason")
                        in ("ErrImagePull", "ImagePullBackOff"), what="noimg pull error")
    assert "not found" in cstatus(p)["state"]["waiting"]["message"]
    assert p["status"]["phase"] == "Pending"
    p = await pod_where(client, ns, "noimg", lambda p: cstatus(p).get("state", {}).get("waiting", {}).get("reason")
                        == "ImagePullBackOff", what="noimg ImagePullBackOff")
    p = await pod_where(client, ns, "badblob", lambda p: cstatus(p).get("state", {}).get("waiting", {}).get("reason")
                        in ("ErrImagePull", "ImagePullBackOff"), what="badblob pull error")
    assert "digest mismatch" in cstatus(p)["state"]["waiting"]["message"] and digest in cstatus(p)["state"]["waiting"]["message"]
    assert agent.alive()


async def test_graceful_node_shutdown_reports_pods_terminated(client, ns, start_agent):
    agent = start_agent(extra=["--shutdown-grace", "2"])
    await ready_node(client, agent.node, agent)
    await client.create(PODS, pod("victim", agent.node, [{"name": "c", "image": "busybox", "command": ["sleep", "600"]}]), ns)
    await pod_where(client, ns, "victim", lambda p: p.get("status", {}).get("phase") == "Running", what="victim Running")
    await asyncio.to_thread(agent.stop)
    p = await client.get(PODS, "victim", ns)
    assert p["status"]["phase"] == "Failed" and p["status"]["reason"] == "Terminated"
    assert "shutdown" in p["status"]["message"]
    assert "terminated" in cstatus(p)["state"]
