"""Ephemeral containers on the node side, the pure parts: the OCI namespaces of a container
that joins its target's PID namespace, the status entry of an ephemeral container, and what
the simulated nodes report for them."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlplane.agent import lifecycle as lc
from controlplane.agent.simulated import _ephemeral_statuses, _new_ephemeral, slim_pod
from controlplane.runtime import oci
from controlplane.runtime.interface import ContainerSpec, Sandbox

SB = Sandbox(id="u", uid="u", hostname="pod-x", netns="/run/netns/cpp-x", ip="10.0.0.2", pod_dir=Path("/p"))


@pytest.mark.parametrize("pid_ns,want", [
    (None, {"type": "pid"}),
    ("/proc/42/ns/pid", {"type": "pid", "path": "/proc/42/ns/pid"}),
], ids=["own", "target's"])
def test_pid_namespace(pid_ns: str | None, want: dict) -> None:
    cfg = oci.build_config(ContainerSpec(name="d", rootfs=Path("/img"), args=["sh"], pid_namespace=pid_ns),
                           SB, "/rootfs", "/cg")
    ns = cfg["linux"]["namespaces"]
    assert ns[0] == want
    assert {"type": "network", "path": SB.netns} in ns  # the pod's network either way


def test_ephemeral_status_is_never_ready() -> None:
    c = lc.CState("debugger", "busybox", ephemeral=True, cid="x", state="running", started_at=1.0, started=True)
    st = c.status()
    assert st["state"] == {"running": {"startedAt": "1970-01-01T00:00:01Z"}}
    assert st["ready"] is False and st["restartCount"] == 0 and st["name"] == "debugger"
    assert "started" not in st  # (set by the kubelet's prober, which ephemeral containers never have)
    c.state, c.exit_code, c.finished_at, c.reason = "terminated", 3, 2.0, "Error"
    assert c.status()["state"]["terminated"]["exitCode"] == 3


def _pod(ephemeral: list[str], reported: list[str]) -> dict:
    return {"metadata": {"name": "p", "namespace": "d", "uid": "u"},
            "spec": {"nodeName": "n", "containers": [{"name": "app", "image": "busybox"}],
                     "ephemeralContainers": [{"name": n, "image": "busybox", "stdin": True} for n in ephemeral]},
            "status": {"phase": "Running", "ephemeralContainerStatuses": [
                {"name": n, "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}} for n in reported]}}


@pytest.mark.parametrize("ephemeral,reported,new", [
    ([], [], False), (["a"], [], True), (["a"], ["a"], False), (["a", "b"], ["a"], True),
], ids=["none", "one new", "all reported", "one more"])
def test_simulated_nodes_see_new_ephemeral_containers(ephemeral: list[str], reported: list[str], new: bool) -> None:
    assert _new_ephemeral(slim_pod(_pod(ephemeral, reported))) is new


def test_simulated_statuses_keep_earlier_start_times() -> None:
    sts = _ephemeral_statuses(slim_pod(_pod(["a", "b"], ["a"])), "2026-02-02T00:00:00Z")
    assert [(s["name"], s["state"]["running"]["startedAt"], s["ready"]) for s in sts] == [
        ("a", "2026-01-01T00:00:00Z", False), ("b", "2026-02-02T00:00:00Z", False)]
