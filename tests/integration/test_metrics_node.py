"""Node statistics from a real agent running a real runc pod: ``/metrics/resource``,
``/stats/summary`` and ``/metrics/cadvisor`` agree with the pod's cgroup (CPU rate under a
500m limit, working set within 5 %), see its network namespace and writable layer, sit behind
the agent's authentication and authorization (``nodes/metrics``); allocatable is below capacity by the hard eviction threshold; and a
crossed hard threshold sets MemoryPressure and evicts the pod (Failed / Evicted, an Event)."""

from __future__ import annotations

import asyncio
import json
import uuid

import aiohttp
import pytest

from controlplane.client.resources import EVENTS, NAMESPACES, NODES, PODS
from controlplane.machinery import promtext
from controlplane.machinery.quantity import bytes_
from controlplane.runtime import cgroups
from tests.integration.test_agent_pods import agent_get, pod, pod_where, ready_node, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.runc, pytest.mark.timeout(180),
              pytest.mark.asyncio(loop_scope="session")]

BURN = {"name": "burn", "image": "busybox",
        "command": ["sh", "-c", "dd if=/dev/zero of=/tmp/fill bs=1024 count=2048 2>/dev/null; while :; do :; done"],
        "resources": {"limits": {"cpu": "500m", "memory": "64Mi"}, "requests": {"cpu": "500m", "memory": "64Mi"}}}


@pytest.fixture
async def ns(client):
    name = f"m-{uuid.uuid4().hex[:8]}"
    await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name


def series(text: str, name: str, **labels: str) -> list[tuple[dict, float, int | None]]:
    return [(lab, v, ts) for n, lab, v, ts in promtext.parse(text)
            if n == name and all(lab.get(k) == val for k, val in labels.items())]


async def test_node_statistics_agree_with_the_cgroup(client, ns, start_agent):
    agent = start_agent()
    node = await ready_node(client, agent.node, agent)
    st = node["status"]
    assert bytes_(st["allocatable"]["memory"]) == bytes_(st["capacity"]["memory"]) - 100 * 2**20
    assert {c["type"]: c["status"] for c in st["conditions"]}["MemoryPressure"] == "False"
    await client.create(PODS, pod("burn", agent.node, [BURN]), ns)
    p = await pod_where(client, ns, "burn", lambda p: p["status"].get("phase") == "Running", what="burn running")
    uid = p["metadata"]["uid"]

    # authenticated and authorized as the kubelet's: nobody 401, a user without nodes/metrics 403,
    # Prometheus' identity (system:prometheus in system:monitoring) and the metrics-server's 200
    assert (await _get_as(agent, node, "/metrics/resource", ""))[0] == 401
    assert (await _get_as(agent, node, "/metrics/resource", "jane", ["devs"]))[0] == 403
    assert (await _get_as(agent, node, "/metrics", "system:prometheus", ["system:monitoring"]))[0] == 200
    assert (await _get_as(agent, node, "/metrics/resource", "system:metrics-server"))[0] == 200

    async def sample():
        code, text = await agent_get(agent, node, "/metrics/resource")
        assert code == 200
        s = series(text, "container_cpu_usage_seconds_total", namespace=ns, pod="burn", container="burn")
        return (s[0][1], s[0][2], text) if s else None

    cpu0, ts0, _ = await wait_for(sample, 30, what="container in /metrics/resource")
    cg = "/" + next(p for p in _container_cgroups(uid))
    before = cgroups.read(cg).cpu_usage_ns, _periods(cg)
    await asyncio.sleep(4)
    cpu1, ts1, text = await sample()
    after = cgroups.read(cg).cpu_usage_ns, _periods(cg)
    rate = (cpu1 - cpu0) / ((ts1 - ts0) / 1000)
    real = (after[0] - before[0]) / 1e9 / ((ts1 - ts0) / 1000)
    assert abs(rate - real) <= max(0.05, 0.1 * real), f"served rate {rate:.3f} vs the cgroup's {real:.3f}"
    if real >= 0.45 or (after[1][1] - before[1][1]) >= 0.9 * max(1, after[1][0] - before[1][0]):
        assert 0.45 <= rate <= 0.55, f"cpu rate {rate:.3f} under a 500m limit"  # the machine gave it its limit
    assert series(text, "node_cpu_usage_seconds_total")[0][1] > cpu1
    assert series(text, "pod_cpu_usage_seconds_total", namespace=ns, pod="burn")[0][1] >= cpu1

    ws_metric = series(text, "container_memory_working_set_bytes", namespace=ns, pod="burn", container="burn")[0][1]
    ws_cgroup = cgroups.read(cg).working_set_bytes
    assert abs(ws_metric - ws_cgroup) <= 0.05 * ws_cgroup, (ws_metric, ws_cgroup)

    code, body = await agent_get(agent, node, "/stats/summary")
    assert code == 200
    summ = json.loads(body)
    ps = next(x for x in summ["pods"] if x["podRef"]["uid"] == uid)
    c = ps["containers"][0]
    assert c["name"] == "burn" and c["rootfs"]["usedBytes"] >= 2 * 2**20  # the 2 MiB file in the writable layer
    assert c["cpu"]["usageNanoCores"] > 0 and c["memory"]["workingSetBytes"] > 0
    assert ps["network"]["name"] == "eth0" and "rxBytes" in ps["network"]
    assert ps["process_stats"]["process_count"] >= 1
    assert summ["node"]["memory"]["availableBytes"] > 0 and summ["node"]["fs"]["capacityBytes"] > 0

    code, cad = await agent_get(agent, node, "/metrics/cadvisor")
    assert code == 200
    assert series(cad, "container_network_receive_bytes_total", namespace=ns, pod="burn", interface="eth0")
    assert series(cad, "container_oom_events_total", namespace=ns, pod="burn", container="burn")[0][1] == 0
    assert series(cad, "container_spec_memory_limit_bytes", container="burn", pod="burn")[0][1] == 64 * 2**20


def _periods(cg_path: str) -> tuple[int, int]:
    stat = dict(line.split() for line in (cgroups.CGROUP_ROOT / "cpu" / cg_path.lstrip("/") / "cpu.stat")
                .read_text().splitlines())
    return int(stat.get("nr_periods", 0)), int(stat.get("nr_throttled", 0))


def _container_cgroups(uid: str) -> list[str]:
    root = cgroups.CGROUP_ROOT / "memory" / cgroups.PREFIX
    return [str(p.relative_to(cgroups.CGROUP_ROOT / "memory")) for p in root.glob(f"*/pod{uid}/*") if p.is_dir()]


async def _get_as(agent, node: dict, path: str, user: str, groups: list[str] | None = None) -> tuple[int, str]:
    """GET on the agent's HTTPS endpoint with ``user``'s client certificate (``""``: none)."""
    port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
    tls = aiohttp.TCPConnector(ssl=agent.api.ssl_context(user, groups or []))
    async with aiohttp.ClientSession(connector=tls) as s:
        async with s.get(f"https://127.0.0.1:{port}{path}") as r:
            return r.status, await r.text()


async def test_hard_threshold_sets_pressure_and_evicts(client, ns, start_agent):
    # memory.available is always below 100 % of capacity: the threshold is met from the start
    agent = start_agent(extra=["--eviction-hard", "memory.available<100%", "--eviction-monitoring-period", "1"])
    await ready_node(client, agent.node, agent)
    sleeper = {"name": "c", "image": "busybox", "command": ["sleep", "3600"]}
    await client.create(PODS, pod("victim", agent.node, [sleeper]), ns)
    p = await pod_where(client, ns, "victim", lambda p: p["status"].get("reason") == "Evicted", timeout=90,
                        what="pod evicted")
    assert p["status"]["phase"] == "Failed"
    assert p["status"]["message"].startswith("The node was low on resource: memory. Threshold quantity: ")
    assert any(c["type"] == "DisruptionTarget" and c["reason"] == "TerminationByKubelet" for c in p["status"]["conditions"])

    async def pressure():
        n = await client.get(NODES, agent.node)
        return {c["type"]: c["status"] for c in n["status"]["conditions"]}.get("MemoryPressure") == "True"
    await wait_for(pressure, 30, what="MemoryPressure True")

    async def evicted_event():
        evs = (await client.list(EVENTS, ns))["items"]
        return any(e["reason"] == "Evicted" and e["involvedObject"]["name"] == "victim" for e in evs)
    await wait_for(evicted_event, 30, what="Evicted event")
    await pod_where(client, ns, "victim", lambda p: "terminated" in p["status"]["containerStatuses"][0]["state"],
                    what="the evicted pod's container killed")


async def test_emptydir_over_its_size_limit_is_evicted(client, ns, start_agent):
    # the kubelet's localStorageEviction: no node threshold involved
    agent = start_agent(extra=["--eviction-hard", "memory.available<1Ki", "--eviction-monitoring-period", "1"])
    await ready_node(client, agent.node, agent)
    await client.create(PODS, pod("filler", agent.node, [{
        "name": "c", "image": "busybox", "command": ["sh", "-c", "dd if=/dev/zero of=/d/big bs=1M count=4; sleep 3600"],
        "volumeMounts": [{"name": "d", "mountPath": "/d"}]}], volumes=[{"name": "d", "emptyDir": {"sizeLimit": "1Mi"}}]), ns)
    p = await pod_where(client, ns, "filler", lambda p: p["status"].get("reason") == "Evicted", timeout=60,
                        what="pod evicted for its emptyDir")
    assert p["status"]["phase"] == "Failed"
    assert p["status"]["message"] == 'Usage of EmptyDir volume "d" exceeds the limit "1Mi". '
