"""Synthetic resource usage for simulated nodes (kwok's ``ResourceUsage``, pure): plausible,
deterministic CPU and memory for every pod and container so the metrics pipeline (scrape,
Metrics API, HorizontalPodAutoscaler) runs at thousands of nodes without processes.

- A container uses a fraction of its request (or of its limit, or 100m / 64Mi with neither):
  CPU 20-80 %, memory 30-70 %, fixed per (pod uid, container) by a hash, CPU with a slow
  +-10 % wave so rates are not constant.
- The pod annotation ``sim.controlplane.io/cpu-usage`` (``"800m"`` for every container, or
  ``"app=800m,side=50m"``) and ``sim.controlplane.io/memory-usage`` replace the model: a load
  step is one annotation patch.
- CPU is a counter: ``UsageModel`` integrates each container's rate over time (the rate in
  force since the previous read), so a changed rate shows up as a change of slope, as on a
  real node. The node's own use is its pods' plus 5 % of its capacity for the system.

``simulated.SimulatedNodes`` builds an ``agent.stats.NodeSample`` per node from this and
serves it through ``stats_format.resource_metrics``.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from controlplane.machinery.quantity import parse_quantity

CPU_ANNOTATION = "sim.controlplane.io/cpu-usage"
MEMORY_ANNOTATION = "sim.controlplane.io/memory-usage"
DEFAULT_CPU = 0.1  # cores, with neither request nor limit
DEFAULT_MEMORY = 64 * 2**20


def _unit(*parts: str) -> float:
    """A stable number in [0, 1) from the parts."""
    h = hashlib.blake2b("/".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2**64


def _overrides(text: str | None, container: str) -> float | None:
    if not text:
        return None
    for part in text.split(","):
        name, sep, val = part.strip().rpartition("=")
        if not sep or name == container:
            try:
                return float(parse_quantity(val.strip()))
            except ValueError:
                return None
    return None


def _amount(resources: dict, name: str, default: float) -> float:
    for kind in ("requests", "limits"):
        v = (resources.get(kind) or {}).get(name)
        if v is not None:
            try:
                return float(parse_quantity(v))
            except ValueError:
                pass
    return default


def cpu_rate(pod: dict, container: dict, t: float) -> float:
    """Cores used by ``container`` of ``pod`` at time ``t``."""
    md = pod.get("metadata") or {}
    name = container.get("name", "")
    ov = _overrides((md.get("annotations") or {}).get(CPU_ANNOTATION), name)
    if ov is not None:
        return ov
    uid = md.get("uid", md.get("name", ""))
    base = _amount(container.get("resources") or {}, "cpu", DEFAULT_CPU) * (0.2 + 0.6 * _unit(uid, name, "cpu"))
    phase = 2 * math.pi * _unit(uid, name, "phase")
    return base * (1.0 + 0.1 * math.sin(t / 300.0 * 2 * math.pi + phase))


def memory_bytes(pod: dict, container: dict) -> int:
    md = pod.get("metadata") or {}
    name = container.get("name", "")
    ov = _overrides((md.get("annotations") or {}).get(MEMORY_ANNOTATION), name)
    if ov is not None:
        return int(ov)
    uid = md.get("uid", md.get("name", ""))
    return int(_amount(container.get("resources") or {}, "memory", DEFAULT_MEMORY) * (0.3 + 0.4 * _unit(uid, name, "mem")))


@dataclass(frozen=True, slots=True)
class ContainerProfile:
    """What the model derives once per pod version (``profile``): the per-read work is a sine."""

    name: str
    image: str
    base_cpu: float  # cores, before the wave
    phase: float
    fixed_cpu: float | None  # an annotation's value
    memory: int

    def cpu(self, t: float) -> float:
        if self.fixed_cpu is not None:
            return self.fixed_cpu
        return self.base_cpu * (1.0 + 0.1 * math.sin(t / 300.0 * 2 * math.pi + self.phase))


def profile(pod: dict) -> list[ContainerProfile]:
    """The containers of ``pod`` as the model sees them (same numbers as ``cpu_rate`` /
    ``memory_bytes``)."""
    md = pod.get("metadata") or {}
    uid = md.get("uid", md.get("name", ""))
    ann = md.get("annotations") or {}
    out = []
    for c in (pod.get("spec") or {}).get("containers") or []:
        name = c.get("name", "")
        res = c.get("resources") or {}
        out.append(ContainerProfile(
            name, c.get("image", ""), _amount(res, "cpu", DEFAULT_CPU) * (0.2 + 0.6 * _unit(uid, name, "cpu")),
            2 * math.pi * _unit(uid, name, "phase"), _overrides(ann.get(CPU_ANNOTATION), name),
            memory_bytes(pod, c)))
    return out


@dataclass
class _Counter:
    t: float
    total: float  # core-seconds
    rate: float


class UsageModel:
    """Cumulative CPU per key (``uid/container``, ``node``), integrated at each read."""

    def __init__(self) -> None:
        self._c: dict[str, _Counter] = {}

    def cpu_seconds(self, key: str, rate: float, t: float, start: float) -> float:
        c = self._c.get(key)
        if c is None:
            c = self._c[key] = _Counter(t, max(0.0, t - start) * rate, rate)
            return c.total
        if t > c.t:
            c.total += c.rate * (t - c.t)
            c.t = t
        c.rate = rate
        return c.total

    def forget(self, live: set[str]) -> None:
        for k in [k for k in self._c if k not in live]:
            del self._c[k]

    def __len__(self) -> int:
        return len(self._c)
