"""Crash and failover: kill the controller-manager or the apiserver mid-rollout and restart
it (the end state is right and no extra pod is ever created); two controller-managers with
leader election (exactly one acts; when it dies the other takes over and finishes)."""

from __future__ import annotations

import asyncio
import json

import pytest

from controlplane.client import resources as R
from controlplane.client.rest import RestClient
from tests.fixtures.apiserver import make_kubectl
from tests.fixtures.controllers import ControllerManagerProcess, PodSimulator
from tests.integration.test_controllers_deployment import PodWatch, deployment, eventually, live, new_namespace

pytestmark = pytest.mark.integration

REPLICAS = 6
HOLD = "controlplane.test/hold"  # deleted pods stay (terminating) so every pod ever created can be counted


class SlowSimulator(PodSimulator):
    """Marks pods ready after a delay so a rollout takes a few seconds."""

    delay = 0.4

    async def _maybe(self, p: dict) -> None:
        if p["metadata"]["uid"] not in self._seen and not p["metadata"].get("deletionTimestamp"):
            await asyncio.sleep(self.delay)
        await super()._maybe(p)


async def _rollout_with_havoc(api, tmp_path, havoc) -> None:
    kubectl = make_kubectl(api.kubeconfig, tmp_path / "kc")
    cm = ControllerManagerProcess(tmp_path / "cm", api.kubeconfig).start()
    client = RestClient.from_kubeconfig(api.kubeconfig)
    sim = None
    watch = None
    try:
        assert cm.wait_log("caches synced", 60), cm.log_tail()
        ns = await new_namespace(client, "havoc")
        sim = await SlowSimulator(client, ns).start()
        await asyncio.to_thread(kubectl, "apply", "-f", "-", input=json.dumps(
            deployment("web", ns, REPLICAS, surge=1, unavailable=0, finalizers=[HOLD])))
        await asyncio.to_thread(kubectl, "rollout", "status", "deployment/web", "-n", ns, "--timeout=120s", timeout=130)
        watch = await PodWatch(client, ns).start()
        assert len(watch.created) == REPLICAS
        await asyncio.to_thread(kubectl, "set", "image", "deployment/web", "c=busybox:2", "-n", ns)

        async def midway():
            pods = live((await client.list(R.PODS, ns))["items"])
            new = [p for p in pods if p["spec"]["containers"][0]["image"] == "busybox:2"]
            return 1 <= len(new) < REPLICAS - 2
        await eventually(midway, timeout=60, interval=0.05)
        cm = await havoc(cm, tmp_path)
        await asyncio.to_thread(kubectl, "rollout", "status", "deployment/web", "-n", ns, "--timeout=120s", timeout=130)
        await asyncio.sleep(1.0)
        pods = live((await client.list(R.PODS, ns))["items"])
        assert len(pods) == REPLICAS
        assert {p["spec"]["containers"][0]["image"] for p in pods} == {"busybox:2"}
        every = (await client.list(R.PODS, ns))["items"]
        assert len(every) == 2 * REPLICAS, f"extra pods were created: {len(every)}"
        assert watch.max_pods <= REPLICAS + 1
        rss = (await client.list(R.REPLICASETS, ns))["items"]
        assert sorted(r["spec"]["replicas"] for r in rss) == [0, REPLICAS]
    finally:
        if watch:
            await watch.stop()
        if sim:
            await sim.stop()
        await client.close()
        cm.stop()


async def test_kill_controller_manager_mid_rollout(fresh_apiserver, tmp_path):
    async def havoc(cm, tmp_path):
        cm.kill()
        await asyncio.sleep(1.0)
        return ControllerManagerProcess(tmp_path / "cm2", fresh_apiserver.kubeconfig).start()
    await _rollout_with_havoc(fresh_apiserver, tmp_path, havoc)


async def test_restart_apiserver_mid_rollout(fresh_apiserver, tmp_path):
    async def havoc(cm, tmp_path):
        await asyncio.to_thread(fresh_apiserver.restart)
        return cm
    await _rollout_with_havoc(fresh_apiserver, tmp_path, havoc)


LEASE = ["--leader-elect", "--leader-elect-lease-duration", "4", "--leader-elect-renew-deadline", "3",
         "--leader-elect-retry-period", "0.5"]


async def test_leader_election_failover(fresh_apiserver, tmp_path):
    api = fresh_apiserver
    kubectl = make_kubectl(api.kubeconfig, tmp_path / "kc")
    a = ControllerManagerProcess(tmp_path / "a", api.kubeconfig, LEASE + ["--identity", "cm-a"], name="cm-a").start()
    b = ControllerManagerProcess(tmp_path / "b", api.kubeconfig, LEASE + ["--identity", "cm-b"], name="cm-b").start()
    client = RestClient.from_kubeconfig(api.kubeconfig)
    try:
        async def holder():
            try:
                lease = await client.get(R.LEASES, "kube-controller-manager", "kube-system")
            except Exception:  # noqa: BLE001 - not created yet
                return None
            return lease["spec"].get("holderIdentity") or None
        leader_id = await eventually(holder, timeout=30)
        leader, standby = (a, b) if leader_id == "cm-a" else (b, a)
        assert leader.wait_log("caches synced", 30), leader.log_tail()
        ns = await new_namespace(client, "le")
        await asyncio.to_thread(kubectl, "apply", "-f", "-", input=json.dumps(deployment("web", ns, 2)))
        await eventually(lambda: _npods(client, ns, 2))
        await asyncio.sleep(1.0)
        assert "became leader" not in standby.log_path.read_text(), "exactly one controller-manager leads"
        assert "caches synced" not in standby.log_path.read_text()

        loop = asyncio.get_running_loop()
        leader.kill()
        t0 = loop.time()
        new_id = await eventually(lambda: _holder_is(client, standby.name), timeout=20, interval=0.1)
        takeover = loop.time() - t0
        assert new_id
        assert takeover <= 4 + 2 * 0.5 + 2.0, f"takeover took {takeover:.1f}s for a 4 s lease"
        await asyncio.to_thread(kubectl, "scale", "deployment/web", "--replicas=4", "-n", ns)
        await eventually(lambda: _npods(client, ns, 4), timeout=30)
        lease = await client.get(R.LEASES, "kube-controller-manager", "kube-system")
        assert lease["spec"]["leaseTransitions"] >= 1
    finally:
        await client.close()
        a.stop()
        b.stop()


async def _npods(client: RestClient, ns: str, n: int) -> bool:
    return len(live((await client.list(R.PODS, ns))["items"])) == n


async def _holder_is(client: RestClient, ident: str) -> bool:
    lease = await client.get(R.LEASES, "kube-controller-manager", "kube-system")
    return lease["spec"].get("holderIdentity") == ident
