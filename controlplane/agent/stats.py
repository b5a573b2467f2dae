"""The node agent's statistics (the kubelet's stats provider over cAdvisor and the CRI): one
``NodeSample`` per read with the node's totals and, per pod and container, CPU (cumulative and
the rate since the previous read), memory (usage, working set, RSS, page faults), OOM kills,
PIDs, the pod network namespace's interfaces, writable layer, log and volume bytes.

Sources: the runtime's container and sandbox stats (cgroups, netns, ``du`` of the writable
layer, ``controlplane/runtime``), the root cgroup and ``/proc`` for the node, ``statvfs`` of the
agent's root for the node file system. Directory sizes are cached ``DU_TTL`` seconds (cAdvisor
also walks them periodically, not per request). Reads are serialized and a read younger than
``min_interval`` is shared, so concurrent scrapes cost one read.

Formats: ``stats_format.py`` (``/stats/summary``, ``/metrics/resource``, ``/metrics/cadvisor``).
Users: ``server.AgentServer`` (the endpoints) and ``pressure.PressureMonitor`` (eviction).
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from controlplane.agent.context import NodeContext
from controlplane.agent.memory_volumes import is_local_ephemeral
from controlplane.runtime import cgroups, netstats
from controlplane.runtime.cgroups import CgroupStats
from controlplane.runtime.interface import RuntimeError_
from controlplane.runtime.netstats import NetDev

DU_TTL = 10.0
# the volumes listed in a pod's statistics (the agent's own; hostPath and claims are not)
AGENT_VOLUMES = ("emptyDir", "configMap", "secret", "downwardAPI", "projected")


@dataclass
class Usage:
    """CPU and memory of one cgroup at ``ts`` (seconds since the epoch)."""

    ts: float
    cpu_ns: int = 0
    nano_cores: int | None = None  # rate since the previous read
    cpu_user_ns: int = 0
    cpu_system_ns: int = 0
    throttled_periods: int = 0
    throttled_ns: int = 0
    usage_bytes: int = 0
    working_set_bytes: int = 0
    rss_bytes: int = 0
    page_faults: int = 0
    major_page_faults: int = 0
    oom_events: int = 0
    pids: int = 0
    memory_limit_bytes: int | None = None
    cache_bytes: int = 0

    @classmethod
    def of(cls, cg: CgroupStats | None, ts: float) -> "Usage":
        if cg is None:
            return cls(ts)
        return cls(ts, cg.cpu_usage_ns, None, cg.cpu_user_ns, cg.cpu_system_ns, cg.throttled_periods, cg.throttled_ns,
                   cg.memory_usage_bytes, cg.working_set_bytes, cg.rss_bytes, cg.page_faults, cg.major_page_faults,
                   cg.oom_events, cg.pids, cg.memory_limit_bytes, cg.cache_bytes)


@dataclass
class ContainerSample:
    name: str
    cid: str
    image: str
    start_time: float
    usage: Usage
    rootfs_bytes: int | None = None
    rootfs_inodes: int | None = None
    logs_bytes: int | None = None
    logs_inodes: int | None = None


@dataclass
class VolumeSample:
    name: str
    used_bytes: int
    inodes_used: int
    capacity_bytes: int
    available_bytes: int
    # ``IsLocalEphemeralVolume``: counted in the pod's ephemeral storage; a tmpfs volume's
    # bytes are memory (charged to whoever wrote them), listed but not counted
    local_ephemeral: bool = True


@dataclass
class PodSample:
    namespace: str
    name: str
    uid: str
    start_time: float
    usage: Usage
    containers: list[ContainerSample] = field(default_factory=list)
    network: dict[str, NetDev] = field(default_factory=dict)
    volumes: list[VolumeSample] = field(default_factory=list)
    processes: int = 0

    @property
    def ephemeral_bytes(self) -> int:
        """The kubelet's ``calcEphemeralStorage``: rootfs and logs of the containers plus the
        local ephemeral volumes (not the memory-backed ones)."""
        return sum((c.rootfs_bytes or 0) + (c.logs_bytes or 0) for c in self.containers) + \
            sum(v.used_bytes for v in self.volumes if v.local_ephemeral)


@dataclass
class FsSample:
    capacity_bytes: int
    available_bytes: int
    used_bytes: int
    inodes: int
    inodes_free: int


@dataclass
class NodeSample:
    node: str
    start_time: float
    usage: Usage
    memory_capacity_bytes: int
    memory_available_bytes: int
    fs: FsSample
    imagefs: FsSample
    network: dict[str, NetDev]
    default_interface: str | None
    max_pid: int
    processes: int
    cpu_cores: int
    pods: list[PodSample] = field(default_factory=list)


class StatsHost(NodeContext, Protocol):
    """The agent as the provider sees it: its config, runtime and pod workers."""

    workers: dict[str, Any]


def fs_sample(path: str | Path) -> FsSample:
    st = os.statvfs(path)
    cap = st.f_blocks * st.f_frsize
    avail = st.f_bavail * st.f_frsize
    return FsSample(cap, avail, cap - st.f_bfree * st.f_frsize, st.f_files, st.f_ffree)


def _boot_time() -> float:
    try:
        for line in open("/proc/stat"):
            if line.startswith("btime "):
                return float(line.split()[1])
    except OSError:
        pass
    return time.time()


def _pid_counts() -> tuple[int, int]:
    try:
        pid_max = int(open("/proc/sys/kernel/pid_max").read())
    except (OSError, ValueError):
        pid_max = 32768
    try:
        procs = sum(1 for p in os.listdir("/proc") if p.isdigit())
    except OSError:
        procs = 0
    return pid_max, procs


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class StatsProvider:
    def __init__(self, agent: StatsHost, min_interval: float = 1.0) -> None:
        self.agent = agent
        self.min_interval = min_interval
        self._lock = asyncio.Lock()
        self._last: NodeSample | None = None
        self._prev_cpu: dict[str, tuple[int, float]] = {}
        self._du: dict[str, tuple[float, int, int]] = {}
        self.boot_time = _boot_time()

    def _rate(self, key: str, u: Usage) -> None:
        prev = self._prev_cpu.get(key)
        if prev is not None and u.ts > prev[1] and u.cpu_ns >= prev[0]:
            u.nano_cores = int((u.cpu_ns - prev[0]) / (u.ts - prev[1]))
        if prev is None or u.ts - prev[1] >= 0.5:  # keep a base at least half a second old
            self._prev_cpu[key] = (u.cpu_ns, u.ts)

    def _du_cached(self, path: Path, now: float) -> tuple[int, int]:
        key = str(path)
        hit = self._du.get(key)
        if hit is None or now - hit[0] > DU_TTL:
            used, inodes = netstats.disk_usage(path)
            hit = self._du[key] = (now, used, inodes)
        return hit[1], hit[2]

    async def sample(self) -> NodeSample:
        """The current sample (shared with concurrent callers and reused for ``min_interval``)."""
        async with self._lock:
            if self._last is not None and time.time() - self._last.usage.ts < self.min_interval:
                return self._last
            self._last = await self._collect()
            return self._last

    async def _collect(self) -> NodeSample:
        cfg = self.agent.cfg
        pods = []
        live: set[str] = {"node"}
        for w in list(self.agent.workers.values()):
            if w.finished or w.sandbox is None:
                continue
            p = await self._pod(w)
            if p is not None:
                pods.append(p)
                live.add(p.uid)
                live.update(c.cid for c in p.containers)
        node = await asyncio.to_thread(self._node, str(cfg.root))
        node.pods = pods
        for k in [k for k in self._prev_cpu if k not in live]:
            del self._prev_cpu[k]
        if len(self._du) > 4 * (len(pods) + 1) * 8:
            self._du.clear()
        return node

    def _node(self, root: str) -> NodeSample:
        now = time.time()
        u = Usage.of(cgroups.read("/"), now)
        self._rate("node", u)
        mi = cgroups.meminfo()
        cap = mi.get("MemTotal", 0)
        fs = fs_sample(root)
        images = Path(root) / "images"
        imagefs = fs_sample(images) if images.exists() else fs
        pid_max, procs = _pid_counts()
        return NodeSample(node=self.agent.cfg.node, start_time=self.boot_time, usage=u, memory_capacity_bytes=cap,
                          memory_available_bytes=max(0, cap - u.working_set_bytes), fs=fs, imagefs=imagefs,
                          network=netstats.read_host(), default_interface=netstats.default_interface(),
                          max_pid=pid_max, processes=procs, cpu_cores=cpu_count())

    async def _pod(self, w: Any) -> PodSample | None:
        rt = self.agent.runtime
        sb = w.sandbox
        # the containers before the pod: counters only grow, so the pod's (which holds them) is
        # never read below the sum of its containers'
        running = []
        for c in w.main:
            if not c.cid or c.state != "running":
                continue
            try:
                running.append((c, await rt.stats(c.cid)))
            except RuntimeError_:
                continue
        try:
            sst = await rt.sandbox_stats(sb)
        except (RuntimeError_, OSError):
            return None
        now = sst.timestamp or time.time()
        pu = Usage.of(sst.cgroup, now)
        self._rate(w.uid, pu)
        spec = w.pod.get("spec") or {}
        images = {c.get("name"): c.get("image", "") for c in spec.get("containers") or []}
        p = PodSample(w.ns, w.name, w.uid, w.start_time, pu, network=sst.network, processes=sst.processes)
        for c, cs in running:
            cu = Usage.of(cs.cgroup, cs.timestamp or now)
            self._rate(c.cid, cu)
            logs, logs_inodes = await asyncio.to_thread(self._du_cached, w.log_dir / c.name, now)
            p.containers.append(ContainerSample(c.name, c.cid, images.get(c.name, c.image), c.started_at or now, cu,
                                                cs.writable_layer_bytes, cs.writable_layer_inodes, logs, logs_inodes))
        vols = {v.get("name"): v for v in spec.get("volumes") or []}
        for name, path in (w.volumes or {}).items():
            v = vols.get(name) or {}
            if not any(k in v for k in AGENT_VOLUMES):
                continue
            used, inodes = await asyncio.to_thread(self._du_cached, Path(path), now)
            try:
                fs = fs_sample(path)
            except OSError:
                continue
            p.volumes.append(VolumeSample(name, used, inodes, fs.capacity_bytes, fs.available_bytes,
                                          local_ephemeral=is_local_ephemeral(v)))
        return p
