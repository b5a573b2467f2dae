"""Pod-level cgroups with real runc pods, as the kubelet sets them (``ResourceConfigForPod``):
a pod whose containers all have limits gets a pod cgroup limited to their sum plus its
RuntimeClass's overhead (memory limit and CFS quota), with shares from its requests plus the
overhead; a pod with an unlimited container gets shares only. The container cgroups sit inside
the pod's; a SIGKILLed agent's successor re-adopts the pod with its cgroup untouched; deleting
the pods removes their cgroups (the ``start_agent`` fixture checks nothing is left)."""

from __future__ import annotations

import json
import uuid

import pytest
import yaml

from controlplane.runtime import cgroups
from tests.fixtures.poll import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.runc]

Mi = 1 << 20


def _apply(kubectl, doc: dict, ns: str | None = None) -> None:
    kubectl("apply", "-f", "-", *(["-n", ns] if ns else []), input=yaml.safe_dump(doc))


def _container(name: str, limits: dict | None = None, requests: dict | None = None) -> dict:
    res = {k: v for k, v in (("limits", limits), ("requests", requests)) if v}
    return {"name": name, "image": "busybox", "command": ["sleep", "3600"], "resources": res}


def _pod(name: str, node: str, runtime_class: str, containers: list[dict]) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": node, "runtimeClassName": runtime_class, "terminationGracePeriodSeconds": 0,
                     "containers": containers}}


def _limits(cg_path: str) -> dict[str, int | None]:
    """The pod cgroup's CPU shares (v1 terms), CFS quota/period in µs (None: no quota) and
    memory limit in bytes (None: unlimited), read from the kernel's files."""
    rel = cg_path.strip("/")
    root = cgroups.CGROUP_ROOT
    if cgroups.is_v2():
        quota, period = (root / rel / "cpu.max").read_text().split()
        mem = (root / rel / "memory.max").read_text().strip()
        return {"weight": int((root / rel / "cpu.weight").read_text()),
                "quota": None if quota == "max" else int(quota), "period": int(period),
                "memory": None if mem == "max" else int(mem)}
    cpu, memory = root / "cpu" / rel, root / "memory" / rel
    quota = int((cpu / "cpu.cfs_quota_us").read_text())
    mem = int((memory / "memory.limit_in_bytes").read_text())
    return {"shares": int((cpu / "cpu.shares").read_text()), "quota": None if quota < 0 else quota,
            "period": int((cpu / "cpu.cfs_period_us").read_text()),
            "memory": None if mem >= cgroups.UNLIMITED else mem}


def _expected(shares: int, quota: int | None, memory: int | None) -> dict[str, int | None]:
    if cgroups.is_v2():
        return {"weight": cgroups.shares_to_weight(shares), "quota": quota, "period": 100_000, "memory": memory}
    return {"shares": shares, "quota": quota, "period": 100_000, "memory": memory}


@pytest.mark.timeout(360)
def test_pod_cgroup_limits_and_overhead(start_agent, kubectl):
    suffix = uuid.uuid4().hex[:6]
    ns, rc = f"pcg-{suffix}", f"overhead-{suffix}"
    kubectl("create", "namespace", ns)
    agent = start_agent()
    node = agent.node
    try:
        _apply(kubectl, {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": rc},
                         "handler": "runc", "overhead": {"podFixed": {"cpu": "50m", "memory": "16Mi"}}})
        _apply(kubectl, _pod("limited", node, rc, [_container("a", {"cpu": "100m", "memory": "32Mi"}),
                                                   _container("b", {"cpu": "200m", "memory": "64Mi"})]), ns)
        _apply(kubectl, _pod("open", node, rc, [_container("c", requests={"cpu": "100m", "memory": "16Mi"})]), ns)
        res = kubectl("wait", "-n", ns, "--for=condition=Ready", "pod/limited", "pod/open", "--timeout=120s",
                      timeout=150, check=False)
        assert res.returncode == 0, f"{res.stderr}\n{agent.log_tail(40)}"
        pods = {p["metadata"]["name"]: p for p in json.loads(kubectl("get", "pods", "-n", ns, "-o", "json").stdout)["items"]}
        assert pods["limited"]["spec"]["overhead"] == {"cpu": "50m", "memory": "16Mi"}
        limited = cgroups.pod_path(node, pods["limited"]["metadata"]["uid"])
        open_ = cgroups.pod_path(node, pods["open"]["metadata"]["uid"])

        # 96Mi + 16Mi; (300m + 50m) of each 100 ms; shares from requests (defaulted from the limits) + overhead
        want_limited = _expected(358, 35_000, 112 * Mi)
        assert _limits(limited) == want_limited
        # an unlimited container: no quota, no memory limit; shares (100m + 50m) * 1024 / 1000
        want_open = _expected(153, None, None)
        assert _limits(open_) == want_open
        # the containers' own cgroups (their own limits) are inside the pod's
        cids = {s["name"]: s["containerID"].split("//")[-1] for s in pods["limited"]["status"]["containerStatuses"]}
        for name, quota, memory in (("a", 10_000, 32 * Mi), ("b", 20_000, 64 * Mi)):
            inner = _limits(f"{limited}/{cids[name]}")
            assert (inner["quota"], inner["memory"]) == (quota, memory), (name, inner)

        # a SIGKILLed agent's successor re-adopts the pods; their cgroups keep their limits
        agent.kill()
        agent.start()
        wait_for("the new agent serves exec", lambda: kubectl(
            "exec", "-n", ns, "limited", "-c", "a", "--", "echo", "adopted", timeout=30, check=False
        ).stdout.strip() == "adopted" or None, 60, diag=lambda: agent.log_tail(30))
        after = json.loads(kubectl("get", "pod", "limited", "-n", ns, "-o", "json").stdout)["status"]
        assert {s["name"]: (s["containerID"].split("//")[-1], s["restartCount"]) for s in after["containerStatuses"]} \
            == {n: (cid, 0) for n, cid in cids.items()}
        assert _limits(limited) == want_limited and _limits(open_) == want_open

        kubectl("delete", "pod", "limited", "open", "-n", ns, "--wait=true", "--timeout=60s", timeout=90)
        # (the agent may still be tidying up when the API object is gone)
        wait_for("the pod cgroups removed", lambda: not (cgroups.existing(limited) or cgroups.existing(open_)) or None,
                 60, diag=lambda: f"{cgroups.existing(limited)} {cgroups.existing(open_)}")
    finally:
        kubectl("delete", "namespace", ns, "--wait=false", check=False)
        kubectl("delete", "runtimeclass", rc, check=False)


@pytest.mark.timeout(240)
def test_pod_max_pids(start_agent, kubectl):
    """``agent --pod-max-pids 16`` (the kubelet's podPidsLimit) caps every pod's processes in
    its pod cgroup, whatever its QoS class: in a BestEffort pod a shell run with ``kubectl
    exec`` that forks 30 sleeps is refused once the pod holds 16 processes."""
    suffix = uuid.uuid4().hex[:6]
    ns = f"pids-{suffix}"
    kubectl("create", "namespace", ns)
    agent = start_agent(extra=["--pod-max-pids", "16"])
    try:
        _apply(kubectl, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "forks"}, "spec": {
            "nodeName": agent.node, "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"]}]}}, ns)
        res = kubectl("wait", "-n", ns, "--for=condition=Ready", "pod/forks", "--timeout=120s", timeout=150, check=False)
        assert res.returncode == 0, f"{res.stderr}\n{agent.log_tail(40)}"
        pod = json.loads(kubectl("get", "pod", "forks", "-n", ns, "-o", "json").stdout)
        path = cgroups.pod_path(agent.node, pod["metadata"]["uid"]).strip("/")
        d = cgroups.CGROUP_ROOT / path if cgroups.is_v2() else cgroups.CGROUP_ROOT / "pids" / path
        assert (d / "pids.max").read_text().strip() == "16"
        r = kubectl("exec", "-n", ns, "forks", "--", "sh", "-c",
                    "i=0; while [ $i -lt 30 ]; do sleep 600 >/dev/null 2>&1 & i=$((i+1)); echo $i; done", timeout=60, check=False)
        started = [int(x) for x in r.stdout.split()]
        assert "can't fork" in r.stderr and r.returncode != 0, (r.stdout, r.stderr)
        assert started and max(started) < 16, started  # the pod's sleep and this shell count too
        assert int((d / "pids.current").read_text()) <= 16
    finally:
        kubectl("delete", "namespace", ns, "--wait=false", check=False)
