"""The pod cgroup's settings as the kubelet's ``ResourceConfigForPod`` computes them (shares
from effective requests plus overhead, quota and memory limit only when every container
declares one, sidecars per KEP-753), the kubelet's unit conversions, and the files
``cgroups.ensure_pod`` writes for cgroup v1 and v2 (in a temporary root)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from controlplane.agent.podcgroup import resource_config_for_pod
from controlplane.runtime import cgroups
from controlplane.runtime.cgroups import PodResourceConfig

Mi = 1 << 20


def c(name: str, req: dict[str, str] | None = None, lim: dict[str, str] | None = None,
      sidecar: bool = False) -> dict[str, Any]:
    res: dict[str, Any] = {}
    if req:
        res["requests"] = req
    if lim:
        res["limits"] = lim
    out: dict[str, Any] = {"name": name, "image": "busybox", "resources": res}
    if sidecar:
        out["restartPolicy"] = "Always"
    return out


def lim(cpu: str | None = None, mem: str | None = None) -> dict[str, str]:
    return {k: v for k, v in (("cpu", cpu), ("memory", mem)) if v is not None}


def guaranteed(name: str, cpu: str, mem: str, sidecar: bool = False) -> dict[str, Any]:
    return c(name, lim(cpu, mem), lim(cpu, mem), sidecar)


def spec(containers: list[dict], init: list[dict] | None = None, overhead: dict | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"containers": containers, "initContainers": init or []}
    if overhead:
        out["overhead"] = overhead
    return out


def cfg(shares: int, quota: int | None = None, memory: int | None = None) -> PodResourceConfig:
    return PodResourceConfig(cpu_shares=shares, cpu_quota_us=quota,
                             cpu_period_us=100_000 if quota is not None else None, memory_limit_bytes=memory)


CASES = [
    ("best effort: 2 shares, nothing else", spec([c("a"), c("b")]), cfg(2)),
    ("best effort with overhead stays at 2 shares",
     spec([c("a")], overhead={"cpu": "250m", "memory": "64Mi"}), cfg(2)),
    ("guaranteed: the sums", spec([guaranteed("a", "100m", "32Mi"), guaranteed("b", "200m", "64Mi")]),
     cfg(307, 30_000, 96 * Mi)),
    ("guaranteed plus overhead (the RuntimeClass's podFixed)",
     spec([guaranteed("a", "100m", "32Mi"), guaranteed("b", "200m", "64Mi")],
          overhead={"cpu": "50m", "memory": "16Mi"}),
     cfg(358, 35_000, 112 * Mi)),
    ("burstable, every container limited: quota and memory",
     spec([c("a", lim("100m", "16Mi"), lim("500m", "32Mi")), c("b", lim("100m"), lim("1", "64Mi"))]),
     cfg(204, 150_000, 96 * Mi)),
    ("one container without any limit: shares only",
     spec([c("a", lim("100m", "16Mi"), lim("500m", "32Mi")), c("b", lim("200m"))]), cfg(307)),
    ("memory limited everywhere, cpu not: memory only",
     spec([c("a", lim("100m"), lim(mem="32Mi")), c("b", lim("100m"), lim("1", "64Mi"))]), cfg(204, None, 96 * Mi)),
    ("cpu limited everywhere, memory not: quota only",
     spec([c("a", lim("100m"), lim("200m")), c("b", lim("100m"), lim("300m", "64Mi"))]), cfg(204, 50_000)),
    ("a limit of 0 counts as undeclared",
     spec([c("a", lim("100m"), lim("0", "32Mi")), c("b", lim("100m"), lim("1", "64Mi"))]), cfg(204, None, 96 * Mi)),
    ("overhead on limits only where a limit is set",
     spec([c("a", lim("100m"), lim(mem="32Mi")), c("b", lim("100m"), lim(mem="64Mi"))],
          overhead={"cpu": "100m", "memory": "10Mi"}),
     cfg(307, None, 106 * Mi)),
    ("a big init container raises the pod's limits",
     spec([guaranteed("a", "100m", "32Mi")], [guaranteed("i", "1", "256Mi")]), cfg(1024, 100_000, 256 * Mi)),
    ("a small init container does not",
     spec([guaranteed("a", "500m", "128Mi")], [guaranteed("i", "100m", "16Mi")]), cfg(512, 50_000, 128 * Mi)),
    ("an unlimited init container removes the limits",
     spec([guaranteed("a", "500m", "128Mi")], [c("i", lim("100m", "16Mi"))]), cfg(512)),
    ("sidecars add to the containers",
     spec([guaranteed("a", "100m", "32Mi")], [guaranteed("s", "200m", "64Mi", sidecar=True)]),
     cfg(307, 30_000, 96 * Mi)),
    ("an init container after a sidecar runs next to it",
     spec([guaranteed("a", "100m", "32Mi")],
          [guaranteed("s", "300m", "64Mi", sidecar=True), guaranteed("i", "500m", "128Mi")]),
     cfg(819, 80_000, 192 * Mi)),
    ("an init container without cpu limit after a limited sidecar counts as declared (ContainerFn)",
     spec([c("a", lim("100m", "32Mi"), lim("100m", "32Mi"))],
          [c("s", lim("100m", "32Mi"), lim("200m", "64Mi"), sidecar=True), c("i", lim("100m", "16Mi"), lim(mem="16Mi"))]),
     cfg(204, 30_000, 96 * Mi)),
    ("an unlimited init container before the sidecar does not",
     spec([c("a", lim("100m", "32Mi"), lim("100m", "32Mi"))],
          [c("i", lim("100m", "16Mi"), lim(mem="16Mi")), c("s", lim("100m", "32Mi"), lim("200m", "64Mi"), sidecar=True)]),
     cfg(204, None, 96 * Mi)),
    ("tiny cpu: shares floor of 2, quota floor of 1ms",
     spec([guaranteed("a", "1m", "4Mi")]), cfg(2, 1000, 4 * Mi)),
    ("fractions are summed before rounding up",
     spec([guaranteed("a", "1.0005", "500m"), guaranteed("b", "1.0005", "500m")]), cfg(2049, 200_100, 1)),
    ("requests only: shares only (burstable)", spec([c("a", lim("250m", "64Mi"))]), cfg(256)),
    ("other resources are ignored",
     spec([c("a", {"cpu": "100m", "ephemeral-storage": "1Gi"}, {"cpu": "100m", "memory": "8Mi",
                                                                   "ephemeral-storage": "1Gi"})]),
     cfg(102, 10_000, 8 * Mi)),
]


@pytest.mark.parametrize("pod_spec,want", [pytest.param(s, w, id=i) for i, s, w in CASES])
def test_resource_config_for_pod(pod_spec: dict, want: PodResourceConfig) -> None:
    assert resource_config_for_pod(pod_spec) == want


def test_cpu_cfs_quota_disabled_and_other_period() -> None:
    s = spec([guaranteed("a", "500m", "64Mi")])
    assert resource_config_for_pod(s, enforce_cpu_limits=False).cpu_quota_us == -1
    got = resource_config_for_pod(s, cpu_period_us=50_000)
    assert (got.cpu_quota_us, got.cpu_period_us) == (25_000, 50_000)


@pytest.mark.parametrize("milli,shares,quota", [
    (0, 2, 0), (1, 2, 1000), (2, 2, 1000), (3, 3, 1000), (10, 10, 1000), (100, 102, 10_000),
    (1000, 1024, 100_000), (2500, 2560, 250_000), (300_000, 262_144, 30_000_000),
])
def test_milli_cpu_conversions(milli: int, shares: int, quota: int) -> None:
    assert cgroups.milli_cpu_to_shares(milli) == shares
    assert cgroups.milli_cpu_to_quota(milli) == quota


@pytest.mark.parametrize("shares,weight", [
    (2, 1), (3, 1), (102, 4), (1024, 39), (2048, 79), (262_143, 9999), (262_144, 10000), (500_000, 10000),
])
def test_shares_to_cgroup_v2_weight(shares: int, weight: int) -> None:
    assert cgroups.shares_to_weight(shares) == weight


def test_v1_writes(tmp_path: Path) -> None:
    for h in ("cpu", "memory"):
        (tmp_path / h).mkdir()
    (tmp_path / "memory" / "memory.stat").write_text("")
    path = cgroups.ensure_pod("n1", "u1", cfg(358, 35_000, 112 * Mi), root=tmp_path)
    assert path == "/controlplane/n1/podu1"
    cpu, mem = tmp_path / "cpu" / path.strip("/"), tmp_path / "memory" / path.strip("/")
    assert {f.name: f.read_text() for f in cpu.iterdir()} == {
        "cpu.shares": "358", "cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "35000"}
    assert {f.name: f.read_text() for f in mem.iterdir()} == {"memory.limit_in_bytes": str(112 * Mi)}


def test_v1_best_effort_touches_cpu_only(tmp_path: Path) -> None:
    for h in ("cpu", "memory"):
        (tmp_path / h).mkdir()
    (tmp_path / "memory" / "memory.stat").write_text("")
    cgroups.ensure_pod("n1", "u1", cfg(2), root=tmp_path)
    assert (tmp_path / "cpu/controlplane/n1/podu1/cpu.shares").read_text() == "2"
    assert not (tmp_path / "memory/controlplane").exists()


def test_v2_enables_controllers_and_writes(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (tmp_path / "cgroup.subtree_control").write_text("memory pids\n")
    for d in ("controlplane", "controlplane/n1"):  # a kernel fills these in; here the test does
        (tmp_path / d).mkdir(parents=True)
        (tmp_path / d / "cgroup.controllers").write_text("cpu memory pids\n")
    path = cgroups.ensure_pod("n1", "u1", cfg(1024, 50_000, 64 * Mi), root=tmp_path)
    assert (tmp_path / "cgroup.subtree_control").read_text() == "+cpu"  # only what is missing
    assert (tmp_path / "controlplane" / "cgroup.subtree_control").read_text() == "+cpu +memory"
    assert (tmp_path / "controlplane/n1/cgroup.subtree_control").read_text() == "+cpu +memory"
    pod = tmp_path / path.strip("/")
    assert {f.name: f.read_text() for f in pod.iterdir()} == {
        "cpu.weight": "39", "cpu.max": "50000 100000", "memory.max": str(64 * Mi)}


def test_pod_max_pids_for_every_qos_class() -> None:
    """``--pod-max-pids`` (the kubelet's podPidsLimit) goes on every pod cgroup, BestEffort
    included; nothing (unlimited) without it or with -1."""
    best_effort = {"containers": [{"name": "c"}]}
    limited = {"containers": [{"name": "c", "resources": {"limits": {"cpu": "1", "memory": "64Mi"}}}]}
    assert resource_config_for_pod(best_effort, pids_limit=100).pids_limit == 100
    assert resource_config_for_pod(limited, pids_limit=100).pids_limit == 100
    assert resource_config_for_pod(limited).pids_limit is None
    assert resource_config_for_pod(limited, pids_limit=-1).pids_limit is None


def test_v1_pids_limit(tmp_path: Path) -> None:
    for h in ("cpu", "memory", "pids"):
        (tmp_path / h).mkdir()
    path = cgroups.ensure_pod("n1", "u1", PodResourceConfig(cpu_shares=2, pids_limit=64), root=tmp_path)
    assert (tmp_path / "pids" / path.strip("/") / "pids.max").read_text() == "64"


def test_v2_pids_limit_enables_the_controller(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids\n")
    (tmp_path / "cgroup.subtree_control").write_text("cpu memory\n")
    path = cgroups.ensure_pod("n1", "u1", PodResourceConfig(cpu_shares=1024, pids_limit=64), root=tmp_path)
    assert (tmp_path / "cgroup.subtree_control").read_text() == "+pids"
    assert (tmp_path / path.strip("/") / "pids.max").read_text() == "64"


@pytest.mark.parametrize("config,want", [
    (cfg(2), [("cpu.weight", "1")]),
    (cfg(307, None, 96 * Mi), [("cpu.weight", "12"), ("memory.max", str(96 * Mi))]),
    (PodResourceConfig(cpu_shares=1024, cpu_quota_us=-1, cpu_period_us=100_000),
     [("cpu.weight", "39"), ("cpu.max", "max 100000")]),
], ids=["best effort", "memory only", "quota disabled"])
def test_v2_settings(config: PodResourceConfig, want: list[tuple[str, str]]) -> None:
    assert cgroups.v2_settings(config) == want
