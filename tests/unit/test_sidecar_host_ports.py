"""hostPorts of sidecar (restartable init) containers, as Kubernetes 1.32 treats them: the
regular containers' and the sidecars' hostPorts are the pod's (the kubelet's sandbox port
mappings, the scheduler's NodePorts via ``getContainerPorts``/``NodeInfo.updateUsedPorts``, the
proxy's host listeners); a plain init container's are not. Table-driven over
``podresources.host_ports`` and its callers: ``PodInfo.from_pod`` (scheduler) and the agent's
``PodWorker._sandbox_spec`` (portmap)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from controlplane.agent.pod_worker import PodWorker
from controlplane.machinery.podresources import host_ports, long_running_containers
from schedulers.framework.podinfo import PodInfo
from schedulers.plugins.node_ports import conflicts


def c(name: str, *ports: dict, policy: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "image": "busybox", "ports": list(ports)}
    if policy:
        out["restartPolicy"] = policy
    return out


def hp(host: int, cport: int | None = None, proto: str | None = None, ip: str | None = None) -> dict[str, Any]:
    p: dict[str, Any] = {"containerPort": cport or host, "hostPort": host}
    if proto:
        p["protocol"] = proto
    if ip:
        p["hostIP"] = ip
    return p


CASES = [
    # (id, spec, host ports as (hostIP, protocol, hostPort), long-running container names)
    ("regular only", {"containers": [c("app", hp(8080))]}, [("0.0.0.0", "TCP", 8080)], ["app"]),
    ("sidecar counted", {"initContainers": [c("proxy", hp(9090, 90, "UDP", "127.0.0.1"), policy="Always")],
                         "containers": [c("app", hp(8080))]},
     [("0.0.0.0", "TCP", 8080), ("127.0.0.1", "UDP", 9090)], ["app", "proxy"]),
    ("plain init left out", {"initContainers": [c("setup", hp(7070))], "containers": [c("app")]}, [], ["app"]),
    ("restartPolicy other than Always left out",
     {"initContainers": [c("setup", hp(7070), policy="Never")], "containers": [c("app")]}, [], ["app"]),
    ("container port without hostPort", {"initContainers": [c("log", {"containerPort": 5000}, policy="Always")],
                                         "containers": [c("app", {"containerPort": 80})]}, [], ["app", "log"]),
    ("sidecars in order after the regular containers",
     {"initContainers": [c("a", hp(1001), policy="Always"), c("i", hp(1002)), c("b", hp(1003), policy="Always")],
      "containers": [c("app", hp(1000))]},
     [("0.0.0.0", "TCP", 1000), ("0.0.0.0", "TCP", 1001), ("0.0.0.0", "TCP", 1003)], ["app", "a", "b"]),
    ("empty", {}, [], []),
]


@pytest.mark.parametrize("spec,want,names", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_host_ports(spec: dict, want: list, names: list[str]) -> None:
    assert [c["name"] for c in long_running_containers(spec)] == names
    got = [(p.get("hostIP") or "0.0.0.0", p.get("protocol") or "TCP", p["hostPort"]) for p in host_ports(spec)]
    assert got == want


@pytest.mark.parametrize("spec,want,names", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_scheduler_pod_info_ports(spec: dict, want: list, names: list[str]) -> None:
    info = PodInfo.from_pod({"metadata": {"name": "p", "namespace": "d", "uid": "u"}, "spec": spec})
    assert info.ports == want


def test_node_ports_conflict_on_a_sidecars_host_port() -> None:
    """A pod whose sidecar holds 9090 on a node blocks another pod asking for 9090 there."""
    placed = PodInfo.from_pod({"metadata": {"name": "a", "uid": "a"}, "spec": {
        "initContainers": [c("proxy", hp(9090), policy="Always")], "containers": [c("app")]}})
    incoming = PodInfo.from_pod({"metadata": {"name": "b", "uid": "b"}, "spec": {"containers": [c("app", hp(9090))]}})
    other = PodInfo.from_pod({"metadata": {"name": "c", "uid": "c"}, "spec": {
        "initContainers": [c("setup", hp(9090))], "containers": [c("app")]}})
    assert conflicts(incoming.ports, set(placed.ports))
    assert not conflicts(incoming.ports, set(other.ports))


@pytest.mark.parametrize("spec,want", [
    ({"initContainers": [c("proxy", hp(9090, 90, "UDP", "127.0.0.1"), policy="Always"), c("setup", hp(7070))],
      "containers": [c("app", hp(8080, 80))]},
     [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp", "hostIP": ""},
      {"hostPort": 9090, "containerPort": 90, "protocol": "udp", "hostIP": "127.0.0.1"}]),
    ({"containers": [c("app", {"hostPort": 8080})]}, []),  # no containerPort: nothing to map
])
def test_sandbox_port_mappings_include_sidecars(spec: dict, want: list) -> None:
    cfg = SimpleNamespace(cluster_domain="cluster.local", resolv_conf="", cluster_dns=[], pod_pids_limit=None)
    worker = SimpleNamespace(agent=SimpleNamespace(cfg=cfg), spec=spec, uid="u", name="p", ns="d",
                             pod={"metadata": {"name": "p", "namespace": "d"}, "spec": spec},
                             _hostname=lambda: "p")
    assert PodWorker._sandbox_spec(worker).port_mappings == want  # type: ignore[arg-type]
