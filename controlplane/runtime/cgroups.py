"""cgroup v1 (+ the hybrid cgroup2 mount) helpers: paths, statistics, OOM events, cleanup.

runc creates a container's cgroup from ``cgroupsPath`` under every mounted hierarchy and
removes that leaf on ``runc delete``; the parents (``/controlplane/<node>/pod<uid>``) are ours
to remove. Read by ``runc.py`` (OOM check before delete, stats) and the agent's node stats.
"""

from __future__ import annotations

import os
from pathlib import Path

from controlplane import hostcleanup

CGROUP_ROOT = Path(os.environ.get("CONTROLPLANE_CGROUP_ROOT", "/sys/fs/cgroup"))
PREFIX = "controlplane"


def hierarchies() -> list[Path]:
    """Every mounted hierarchy root (v1 controllers, named ones, and the unified mount)."""
    out = []
    try:
        for p in sorted(CGROUP_ROOT.iterdir()):
            if p.is_dir() and (p / "cgroup.procs").exists():
                out.append(p)
    except OSError:
        pass
    return out


def node_path(node: str) -> str:
    return f"/{PREFIX}/{node}"


def pod_path(node: str, pod_uid: str) -> str:
    return f"{node_path(node)}/pod{pod_uid}"


def container_path(node: str, pod_uid: str, cid: str) -> str:
    return f"{pod_path(node, pod_uid)}/{cid}"


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def oom_kills(cg_path: str) -> int:
    """The memory cgroup's OOM-kill count (``memory.oom_control`` ``oom_kill``), 0 if gone."""
    text = _read(CGROUP_ROOT / "memory" / cg_path.lstrip("/") / "memory.oom_control") or ""
    for line in text.splitlines():
        k, _, v = line.partition(" ")
        if k == "oom_kill":
            return int(v)
    return 0


def stats(cg_path: str) -> tuple[int, int, int]:
    """(cpu usage ns, memory working set bytes, pids) of one cgroup; zeros when absent."""
    rel = cg_path.lstrip("/")
    cpu = _read(CGROUP_ROOT / "cpuacct" / rel / "cpuacct.usage")
    mem = _read(CGROUP_ROOT / "memory" / rel / "memory.usage_in_bytes")
    inactive = 0
    for line in (_read(CGROUP_ROOT / "memory" / rel / "memory.stat") or "").splitlines():
        k, _, v = line.partition(" ")
        if k == "total_inactive_file":
            inactive = int(v)
    pids = _read(CGROUP_ROOT / "pids" / rel / "pids.current")
    mem_b = max(0, int(mem) - inactive) if mem else 0
    return (int(cpu) if cpu else 0, mem_b, int(pids) if pids else 0)


def remove_tree(cg_path: str) -> list[str]:
    """rmdir ``cg_path`` and its (empty) descendants in every hierarchy; returns leftovers."""
    left: list[str] = []
    rel = cg_path.lstrip("/")
    for h in hierarchies():
        top = h / rel
        if not top.exists():
            continue
        dirs = sorted((Path(d) for d, _, _ in os.walk(top)), key=lambda p: len(p.parts), reverse=True)
        for d in dirs:
            try:
                d.rmdir()
            except OSError:
                left.append(str(d))
    return left


def existing(cg_path: str) -> list[str]:
    rel = cg_path.lstrip("/")
    return [str(h / rel) for h in hierarchies() if (h / rel).exists()]


def remove_if_empty(cg_path: str) -> None:
    """rmdir one directory in every hierarchy if it has no children (shared parents)."""
    for h in hierarchies():
        try:
            (h / cg_path.lstrip("/")).rmdir()
        except OSError:
            pass


async def _down_remove(inst: hostcleanup.Instance) -> None:
    remove_tree(node_path(inst.host_id))
    remove_if_empty("/" + PREFIX)


hostcleanup.register("cgroups", _down_remove, lambda inst: existing(node_path(inst.host_id)), order=50)
