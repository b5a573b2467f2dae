"""Must-show: two real agents (distinct node names and roots) with the apiserver, the
controller-manager and the scheduler — a busybox Deployment runs in runc containers, kubectl
logs (-f) and exec work through the apiserver, readiness drives the Endpoints, and a killed
agent's node goes NotReady and its pods come back on the other node after their toleration."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from controlplane.client import resources as R
from controlplane.client.manager import Manager
from controlplane.controllers import nodelifecycle
from tests.integration.test_agent_pods import ready_node, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.runc, pytest.mark.slow, pytest.mark.timeout(300),
              pytest.mark.asyncio(loop_scope="session")]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def scheduler(apiserver, tmp_path):
    """The real scheduler (``controlplane scheduler``) against the session apiserver."""
    log = open(tmp_path / "scheduler.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "controlplane", "scheduler", "--kubeconfig", str(apiserver.kubeconfig)],
                            stdout=log, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True,
                            env={**os.environ, "CONTROLPLANE_LOG_FORMAT": "json"})
    log.close()
    time.sleep(1.0)
    if proc.poll() is not None:
        pytest.fail(f"scheduler exited: {(tmp_path / 'scheduler.log').read_text()[-2000:]}")
    yield proc
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
def cluster_ns(kubectl):
    ns = f"c-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", ns)
    yield ns
    kubectl("delete", "namespace", ns, "--wait=false", check=False)


def deployment(name: str, replicas: int, group: str, *, command: str, extra: dict | None = None,
               tolerations: list | None = None) -> str:
    c = {"name": "app", "image": "busybox", "command": ["sh", "-c", command], **(extra or {})}
    d = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
         "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                  "template": {"metadata": {"labels": {"app": name}},
                               "spec": {"nodeSelector": {"test-group": group}, "terminationGracePeriodSeconds": 1,
                                        "tolerations": tolerations or [], "containers": [c]}}}}
    return json.dumps(d)


async def running_pods(client, ns: str, app: str, n: int, timeout: float = 90) -> list[dict]:
    async def check():
        pods = (await client.list(R.PODS, ns, label_selector=f"app={app}"))["items"]
        ok = [p for p in pods if (p.get("status") or {}).get("phase") == "Running"
              and not p["metadata"].get("deletionTimestamp")]
        return ok if len(ok) >= n else None
    return await wait_for(check, timeout, what=f"{n} Running pods of {app}")


async def two_agents(start_agent, client, extra=None):
    group = uuid.uuid4().hex[:8]
    a = start_agent(f"a-{group}", ["--labels", f"test-group={group}", *(extra or [])])
    b = start_agent(f"b-{group}", ["--labels", f"test-group={group}", *(extra or [])])
    await ready_node(client, a.node, a)
    await ready_node(client, b.node, b)
    return group, a, b


async def test_deployment_runs_and_kubectl_logs_exec(apiserver, controller_manager, scheduler, start_agent,
                                                    client, kubectl, cluster_ns, tmp_path):
    group, a, b = await two_agents(start_agent, client)
    kubectl("apply", "-n", cluster_ns, "-f", "-", input=deployment(
        "hello", 2, group, command="echo hello from $(hostname); i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.3; done"))
    pods = await running_pods(client, cluster_ns, "hello", 2)
    for p in pods:
        name = p["metadata"]["name"]
        assert p["spec"]["nodeName"] in (a.node, b.node)
        out = kubectl("logs", "-n", cluster_ns, name).stdout.splitlines()
        assert out[0] == f"hello from {name}"
        assert kubectl("logs", "-n", cluster_ns, name, "--tail", "1").stdout.startswith("tick")
        assert kubectl("exec", "-n", cluster_ns, name, "--", "cat", "/etc/hostname").stdout == f"{name}\n"
        res = kubectl("exec", "-n", cluster_ns, name, "--", "sh", "-c", "exit 4", check=False)
        assert res.returncode == 4
        assert kubectl("exec", "-i", "-n", cluster_ns, name, "--", "cat", input="from stdin\n").stdout == "from stdin\n"
    name = pods[0]["metadata"]["name"]
    follow = subprocess.run(["timeout", "2", "kubectl", "--kubeconfig", str(apiserver.kubeconfig), "--cache-dir",
                             str(tmp_path / "kc"), "logs", "-f", "--tail", "1", "-n", cluster_ns, name],
                            capture_output=True, text=True)
    ticks = [line for line in follow.stdout.splitlines() if line.startswith("tick")]
    assert len(ticks) >= 3 and ticks == sorted(ticks, key=lambda t: int(t.split()[1]))
    assert kubectl("logs", "-n", cluster_ns, name, "-c", "nope", check=False).returncode != 0


async def test_readiness_flips_endpoints(controller_manager, scheduler, start_agent, client, kubectl, cluster_ns):
    group, a, b = await two_agents(start_agent, client)
    kubectl("apply", "-n", cluster_ns, "-f", "-", input=deployment(
        "web", 2, group, command="mkdir -p /www; echo ok > /www/index.html; exec httpd -f -p 8080 -h /www",
        extra={"ports": [{"containerPort": 8080, "name": "http"}],
               "readinessProbe": {"httpGet": {"path": "/index.html", "port": "http"}, "periodSeconds": 1,
                                  "failureThreshold": 1}}))
    kubectl("apply", "-n", cluster_ns, "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]}}))
    pods = await running_pods(client, cluster_ns, "web", 2)
    ips = {p["status"]["podIP"] for p in pods}

    async def endpoints(ready: set, not_ready: set):
        async def check():
            ep = await client.get(R.ENDPOINTS, "web", cluster_ns)
            got_r = {x["ip"] for s in ep.get("subsets") or [] for x in s.get("addresses") or []}
            got_n = {x["ip"] for s in ep.get("subsets") or [] for x in s.get("notReadyAddresses") or []}
            return ep if (got_r, got_n) == (ready, not_ready) else None
        return await wait_for(check, 60, what=f"endpoints ready={ready} notReady={not_ready}")

    await endpoints(ips, set())
    victim = pods[0]
    kubectl("exec", "-n", cluster_ns, victim["metadata"]["name"], "--", "rm", "/www/index.html")
    await endpoints(ips - {victim["status"]["podIP"]}, {victim["status"]["podIP"]})
    p = await client.get(R.PODS, victim["metadata"]["name"], cluster_ns)
    assert {c["type"]: c["status"] for c in p["status"]["conditions"]}["Ready"] == "False"
    kubectl("exec", "-n", cluster_ns, victim["metadata"]["name"], "--", "sh", "-c", "echo ok > /www/index.html")
    await endpoints(ips, set())


async def test_killed_agent_node_goes_not_ready_and_pods_move(apiserver, controller_manager, scheduler, start_agent,
                                                             client, kubectl, cluster_ns):
    group, a, b = await two_agents(start_agent, client, ["--lease-interval", "1", "--status-interval", "2"])
    stop = asyncio.Event()
    mgr = Manager(client, name="nodelifecycle-test")
    nodelifecycle.NodeLifecycleController(mgr, grace=5, period=0.5)
    mgr_task = asyncio.create_task(mgr.start(stop))
    try:
        tol = [{"key": nodelifecycle.UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 3}]
        kubectl("apply", "-n", cluster_ns, "-f", "-", input=deployment(
            "mover", 4, group, command="while true; do sleep 1; done", tolerations=tol))
        pods = await running_pods(client, cluster_ns, "mover", 4)
        on_b = {p["metadata"]["name"] for p in pods if p["spec"]["nodeName"] == b.node}
        if not on_b:  # the scheduler spread nothing onto b: kill a instead
            a, b = b, a
            on_b = {p["metadata"]["name"] for p in pods if p["spec"]["nodeName"] == b.node}
        assert on_b
        killed_at = time.monotonic()
        b.kill()

        async def not_ready():
            n = await client.get(R.NODES, b.node)
            conds = {c["type"]: c["status"] for c in n["status"]["conditions"]}
            taints = {(t["key"], t["effect"]) for t in n["spec"].get("taints") or []}
            return n if conds["Ready"] == "Unknown" and (nodelifecycle.UNREACHABLE, "NoExecute") in taints else None
        await wait_for(not_ready, 30, what="node NotReady + unreachable taint")
        assert time.monotonic() - killed_at < 30

        async def node_controller_events():  # as kube-controller-manager's node-controller records them
            evs = (await client.list(R.EVENTS, "default", field_selector=f"involvedObject.name={b.node}"))["items"]
            got = {e["reason"]: e["message"] for e in evs if (e.get("source") or {}).get("component") == "node-controller"}
            return got if {"RegisteredNode", "NodeNotReady"} <= set(got) else None
        evs = await wait_for(node_controller_events, 20, what="RegisteredNode and NodeNotReady events")
        assert evs["RegisteredNode"] == f"Node {b.node} event: Registered Node {b.node} in Controller"

        async def moved():
            pods = (await client.list(R.PODS, cluster_ns, label_selector="app=mover"))["items"]
            live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
            run_a = [p for p in live if p["spec"].get("nodeName") == a.node and p.get("status", {}).get("phase") == "Running"]
            evicted = all(p["metadata"].get("deletionTimestamp") for p in pods if p["metadata"]["name"] in on_b)
            return run_a if len(run_a) == 4 and evicted else None
        await wait_for(moved, 90, what="pods recreated on the surviving node")

        # the node returns: taints lifted, Ready again, its evicted pods finally removed
        b.start()

        async def back():
            n = await client.get(R.NODES, b.node)
            conds = {c["type"]: c["status"] for c in n["status"]["conditions"]}
            taints = [t for t in n["spec"].get("taints") or [] if t["key"] == nodelifecycle.UNREACHABLE]
            return n if conds["Ready"] == "True" and not taints else None
        await wait_for(back, 60, what="returning node Ready without taints")

        async def cleaned():
            names = {p["metadata"]["name"] for p in (await client.list(R.PODS, cluster_ns, label_selector="app=mover"))["items"]}
            return not (names & on_b)
        await wait_for(cleaned, 60, what="evicted pods deleted by the returning agent")
    finally:
        stop.set()
        await asyncio.wait_for(mgr_task, 30)
