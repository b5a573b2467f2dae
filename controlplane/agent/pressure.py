"""The node agent's eviction manager: every ``eviction_interval`` (10 s) it reads the node's
statistics (``stats.StatsProvider``), turns them into the kubelet's eviction signals
(``memory.available`` = memory capacity - node working set, ``nodefs.available`` /
``inodesFree`` of the agent root, ``imagefs.*`` of the image store, ``pid.available`` =
pid_max - processes), sets the node's MemoryPressure / DiskPressure / PIDPressure (held for the
transition period, ``eviction.PressureConditions``) and, while a hard threshold is crossed,
evicts one pod per round, the first in the kubelet's order (``eviction.rank``): the pod is
killed at once, reported ``Failed`` with reason ``Evicted`` and the kubelet's message, and an
``Evicted`` Event is recorded (plus ``EvictionThresholdMet`` on the node).

Owned by ``agent.Agent`` (``run`` is one of its tasks); the rules are in ``eviction.py``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from controlplane.agent.eviction import (
    CONDITION, RESOURCE, Observation, PodUsage, PressureConditions, Threshold, container_request, is_critical,
    local_storage_violation, message,
    parse_thresholds, pod_request, rank, thresholds_met,
)
from controlplane.agent.stats import NodeSample, StatsHost, StatsProvider
from controlplane.log import get_logger

log = get_logger(__name__)


def observations(n: NodeSample) -> dict[str, Observation]:
    return {
        "memory.available": Observation(n.memory_capacity_bytes - n.usage.working_set_bytes, n.memory_capacity_bytes),
        "nodefs.available": Observation(n.fs.available_bytes, n.fs.capacity_bytes),
        "nodefs.inodesFree": Observation(n.fs.inodes_free, n.fs.inodes),
        "imagefs.available": Observation(n.imagefs.available_bytes, n.imagefs.capacity_bytes),
        "imagefs.inodesFree": Observation(n.imagefs.inodes_free, n.imagefs.inodes),
        "pid.available": Observation(n.max_pid - n.processes, n.max_pid),
    }


def pod_usages(n: NodeSample, pods: dict[str, dict]) -> list[PodUsage]:
    """Ranking input: each sampled pod's use with its spec's requests and priority. The pod's
    requests are its effective requests (sidecars included, ``eviction.pod_request``); a
    container's own request, for the message, is looked up among the regular and the init
    containers (a sidecar over its request is named too)."""
    out = []
    for p in n.pods:
        pod = pods.get(p.uid)
        if pod is None:
            continue
        spec = pod.get("spec") or {}
        specs = {c.get("name"): c for c in (spec.get("initContainers") or []) + (spec.get("containers") or [])
                 if isinstance(c, dict)}
        per = []
        for c in p.containers:
            cs = specs.get(c.name) or {}
            per.append((c.name, c.usage.working_set_bytes, container_request(cs, "memory"),
                        (c.rootfs_bytes or 0) + (c.logs_bytes or 0), container_request(cs, "ephemeral-storage")))
        out.append(PodUsage(
            key=p.uid, priority=int(spec.get("priority") or 0), critical=is_critical(pod),
            memory_request=pod_request(spec, "memory"), memory_usage=p.usage.working_set_bytes,
            storage_request=pod_request(spec, "ephemeral-storage"),
            storage_usage=p.ephemeral_bytes, processes=p.processes, containers=per))
    return out


class PressureMonitor:
    def __init__(self, agent: StatsHost, stats: StatsProvider, on_change: Callable[[dict[str, bool]], Awaitable[None]],
                 clock: Callable[[], float] = time.time) -> None:
        cfg = agent.cfg
        self.agent = agent
        self.stats = stats
        self.thresholds: list[Threshold] = parse_thresholds(cfg.eviction_hard)
        self.pc = PressureConditions(cfg.eviction_pressure_transition)
        self.interval = cfg.eviction_interval
        self.on_change = on_change
        self.clock = clock
        self.conditions = self.pc.conditions(clock())

    async def check(self) -> str | None:
        """One round; returns the uid of the pod evicted, if any."""
        n = await self.stats.sample()
        evicted = self._local_storage(n)
        if evicted is not None:
            return evicted
        obs = observations(n)
        met = thresholds_met(self.thresholds, obs)
        conds = self.pc.observe(met, self.clock())
        if conds != self.conditions:
            self.conditions = conds
            log.info("node pressure changed", **conds)
            await self.on_change(conds)
        if not met:
            return None
        t = met[0]
        node_ref = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": self.agent.cfg.node, "uid": self.agent.cfg.node}}
        self.agent.event(node_ref, "Warning", "EvictionThresholdMet", f"Attempting to reclaim {RESOURCE[t.signal]}")
        workers = {w.uid: w for w in self.agent.workers.values() if not w.finished and not getattr(w, "evicted", None)}
        ranked = rank(t.signal, pod_usages(n, {uid: w.pod for uid, w in workers.items()}))
        if not ranked:
            log.warning("eviction threshold met but no pod can be evicted", signal=t.signal,
                        condition=CONDITION[t.signal])
            return None
        victim = ranked[0]
        w = workers[victim.key]
        msg = message(t, obs[t.signal], victim)
        log.warning("evicting pod", pod=f"{w.ns}/{w.name}", signal=t.signal, message=msg)
        self.agent.event(w.pod, "Warning", "Evicted", msg)
        w.evict(msg)
        return victim.key

    def _local_storage(self, n: NodeSample) -> str | None:
        """``localStorageEviction``: a pod over an emptyDir ``sizeLimit`` or an
        ``ephemeral-storage`` limit is evicted whatever the node's state."""
        workers = {w.uid: w for w in self.agent.workers.values() if not w.finished and not getattr(w, "evicted", None)}
        for p in n.pods:
            w = workers.get(p.uid)
            if w is None:
                continue
            msg = local_storage_violation(
                w.pod.get("spec") or {}, {v.name: v.used_bytes for v in p.volumes}, p.ephemeral_bytes,
                {c.name: (c.rootfs_bytes or 0) + (c.logs_bytes or 0) for c in p.containers})
            if msg is None:
                continue
            log.warning("evicting pod", pod=f"{w.ns}/{w.name}", reason="local storage", message=msg)
            self.agent.event(w.pod, "Warning", "Evicted", msg)
            w.evict(msg)
            return p.uid
        return None

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - one bad round must not end the monitor
                log.warning("eviction check failed", error=repr(e))
            try:
                await asyncio.wait_for(stop.wait(), self.interval)
            except asyncio.TimeoutError:
                pass
