"""The node agent's eviction rules (the kubelet's eviction manager), pure and clock-free:
hard thresholds, which node condition each signal drives, the pressure transition period, and
which pod goes first when a threshold is crossed.

- ``parse_thresholds("memory.available<100Mi,nodefs.available<10%")``: the kubelet's
  ``--eviction-hard`` syntax; signals ``memory.available``, ``nodefs.available``,
  ``nodefs.inodesFree``, ``imagefs.available``, ``imagefs.inodesFree``, ``pid.available``;
  a quantity or a percentage of capacity.
- ``thresholds_met(thresholds, observations)``: the thresholds whose signal is below them.
- ``PressureConditions``: MemoryPressure / DiskPressure / PIDPressure stay True for
  ``transition_period`` (5 min, ``--eviction-pressure-transition-period``) after the last
  observation that met a threshold, so a node does not flap.
- ``pod_request(spec, resource)``: the pod's request that ranking compares use with (the
  kubelet's ``podRequest``): the effective request of ``machinery/podresources.py``, so
  sidecars (``restartPolicy: Always`` init containers) add to the regular containers and a
  plain init container's request counts only where it is the larger.
- ``rank(signal, pods)``: memory: pods using more than they request first, then lower
  priority, then usage above request; disk (ephemeral-storage) the same with disk use; PIDs:
  lower priority, then more processes. Critical pods (system priority >= 2,000,000,000 or
  static) are never chosen.
- ``message(...)``: the pod status message the kubelet writes ("The node was low on resource:
  memory. Threshold quantity: 100Mi, available: 50Mi. Container c was using 1Gi, request is
  0, has larger consumption of memory. ").

``controlplane/agent/pressure.py`` observes the machine and acts on these every 10 s.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from controlplane.machinery.podresources import aggregate
from controlplane.machinery.quantity import bytes_, canonical, format_quantity, parse_quantity

DEFAULT_EVICTION_HARD = "memory.available<100Mi,nodefs.available<10%,imagefs.available<15%,nodefs.inodesFree<5%"
SIGNALS = ("memory.available", "nodefs.available", "nodefs.inodesFree", "imagefs.available", "imagefs.inodesFree",
           "pid.available")
CONDITION = {"memory.available": "MemoryPressure", "nodefs.available": "DiskPressure",
             "nodefs.inodesFree": "DiskPressure", "imagefs.available": "DiskPressure",
             "imagefs.inodesFree": "DiskPressure", "pid.available": "PIDPressure"}
RESOURCE = {"memory.available": "memory", "nodefs.available": "ephemeral-storage",
            "nodefs.inodesFree": "inodes", "imagefs.available": "ephemeral-storage",
            "imagefs.inodesFree": "inodes", "pid.available": "pids"}
TAINT = {"MemoryPressure": "node.kubernetes.io/memory-pressure", "DiskPressure": "node.kubernetes.io/disk-pressure",
         "PIDPressure": "node.kubernetes.io/pid-pressure"}
SYSTEM_CRITICAL_PRIORITY = 2_000_000_000


@dataclass(frozen=True)
class Threshold:
    signal: str
    quantity: int | None = None  # bytes / inodes / pids
    percentage: float | None = None  # fraction of capacity, 0..1

    def value(self, capacity: int) -> int:
        if self.quantity is not None:
            return self.quantity
        return int((self.percentage or 0.0) * capacity)

    def text(self) -> str:
        if self.quantity is not None:
            return format_quantity(self.quantity, "BinarySI") if self.signal == "memory.available" else str(self.quantity)
        return f"{(self.percentage or 0) * 100:g}%"


def parse_thresholds(text: str) -> list[Threshold]:
    """The kubelet's ``--eviction-hard`` value; ValueError names what is wrong."""
    out: list[Threshold] = []
    for part in [p.strip() for p in (text or "").split(",") if p.strip()]:
        if "<" not in part:
            raise ValueError(f"invalid eviction threshold {part!r}: only the operator '<' is supported")
        signal, _, amount = part.partition("<")
        signal, amount = signal.strip(), amount.strip()
        if signal not in SIGNALS:
            raise ValueError(f"unsupported eviction signal {signal!r}")
        if amount.endswith("%"):
            pct = float(amount[:-1])
            if not 0 <= pct <= 100:
                raise ValueError(f"eviction percentage threshold {signal} must be within 0% and 100%: {amount}")
            out.append(Threshold(signal, percentage=pct / 100.0))
        else:
            q = int(parse_quantity(amount))
            if q < 0:
                raise ValueError(f"eviction threshold {signal} must be positive: {amount}")
            out.append(Threshold(signal, quantity=q))
    return out


@dataclass(frozen=True)
class Observation:
    available: int
    capacity: int


def thresholds_met(thresholds: list[Threshold], obs: dict[str, Observation]) -> list[Threshold]:
    met = []
    for t in thresholds:
        o = obs.get(t.signal)
        if o is not None and o.available < t.value(o.capacity):
            met.append(t)
    return met


@dataclass
class PressureConditions:
    """Node pressure conditions with the kubelet's transition period."""

    transition_period: float = 300.0
    last_met: dict[str, float] = field(default_factory=dict)

    def observe(self, met: list[Threshold], now: float) -> dict[str, bool]:
        for t in met:
            self.last_met[CONDITION[t.signal]] = now
        return self.conditions(now)

    def conditions(self, now: float) -> dict[str, bool]:
        return {c: (c in self.last_met and now - self.last_met[c] < self.transition_period)
                for c in ("MemoryPressure", "DiskPressure", "PIDPressure")}


@dataclass
class PodUsage:
    """What ranking needs of one pod: its requests, its use and its priority."""

    key: str  # namespace/name
    priority: int = 0
    critical: bool = False
    memory_request: int = 0
    memory_usage: int = 0
    storage_request: int = 0
    storage_usage: int = 0
    processes: int = 0
    containers: list[tuple[str, int, int, int, int]] = field(default_factory=list)
    # (name, memory usage, memory request, storage usage, storage request) per container


def _bytes(_resource: str, q: object) -> int:
    try:
        return bytes_(q)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0


def container_request(container: dict, resource: str) -> int:
    """One container's request of ``resource`` (``memory``, ``ephemeral-storage``) in bytes; 0
    where unset or unreadable."""
    q = ((container.get("resources") or {}).get("requests") or {}).get(resource)
    return _bytes(resource, q) if q is not None else 0


def pod_request(spec: dict, resource: str) -> int:
    """The pod's request of ``resource`` in bytes as the kubelet's eviction ranking reads it
    (``podRequest``): max(sum(containers) + sum(sidecars), max over init containers of the
    init container plus the sidecars started before it). Overhead is not counted."""
    return int(aggregate(spec, "requests", _bytes).get(resource, 0))


def rank(signal: str, pods: list[PodUsage]) -> list[PodUsage]:
    """Candidates in eviction order for ``signal`` (critical pods left out)."""
    cands = [p for p in pods if not p.critical]
    res = RESOURCE[signal]
    if res == "memory":
        return sorted(cands, key=lambda p: (not p.memory_usage > p.memory_request, p.priority,
                                            -(p.memory_usage - p.memory_request)))
    if res in ("ephemeral-storage", "inodes"):
        return sorted(cands, key=lambda p: (not p.storage_usage > p.storage_request, p.priority,
                                            -(p.storage_usage - p.storage_request)))
    return sorted(cands, key=lambda p: (p.priority, -p.processes))


def _q(v: int) -> str:
    return format_quantity(v, "BinarySI") if v % 1024 == 0 or v > 1024 else str(v)


def message(t: Threshold, o: Observation, pod: PodUsage) -> str:
    res = RESOURCE[t.signal]
    unit = _q if res in ("memory", "ephemeral-storage") else str
    msg = (f"The node was low on resource: {res}. Threshold quantity: {unit(t.value(o.capacity))}, "
           f"available: {unit(max(0, o.available))}. ")
    for name, mu, mr, su, sr in pod.containers:
        used, req = (mu, mr) if res == "memory" else (su, sr)
        if res in ("memory", "ephemeral-storage") and used > req:
            msg += f"Container {name} was using {_q(used)}, request is {_q(req)}, has larger consumption of {res}. "
    return msg


def local_storage_violation(spec: dict, volume_used: dict[str, int], pod_used: int,
                            container_used: dict[str, int]) -> str | None:
    """The kubelet's ``localStorageEviction`` for one pod, checked every round before the node
    thresholds: an emptyDir over its ``sizeLimit`` (a tmpfs one too), then the pod's ephemeral
    storage (its containers' rootfs and logs plus its local ephemeral volumes, a disk emptyDir
    and configMap ones: ``stats.PodSample.ephemeral_bytes``) over the sum of its
    containers' ``ephemeral-storage`` limits, then one container's rootfs and logs over its own
    limit. Returns the eviction message (the kubelet's, trailing space included) or None."""
    for v in spec.get("volumes") or []:
        if not isinstance(v, dict) or not isinstance(v.get("emptyDir"), dict):
            continue
        size = v["emptyDir"].get("sizeLimit")
        limit = _bytes("ephemeral-storage", size) if size is not None else 0
        used = volume_used.get(v.get("name") or "")
        if used is not None and limit > 0 and used > limit:
            return f'Usage of EmptyDir volume "{v.get("name")}" exceeds the limit "{canonical(str(size))}". '
    limits = aggregate(spec, "limits", _bytes)
    if "ephemeral-storage" in limits and pod_used > limits["ephemeral-storage"]:
        return ("Pod ephemeral local storage usage exceeds the total limit of containers "
                f"{format_quantity(int(limits['ephemeral-storage']), 'BinarySI')}. ")
    for c in spec.get("containers") or []:
        q = ((c.get("resources") or {}).get("limits") or {}).get("ephemeral-storage") if isinstance(c, dict) else None
        limit = _bytes("ephemeral-storage", q) if q is not None else 0
        if limit and container_used.get(c.get("name") or "", 0) > limit:
            return f'Container {c.get("name")} exceeded its local ephemeral storage limit "{canonical(str(q))}". '
    return None


def is_critical(pod: dict) -> bool:
    """The kubelet's IsCriticalPod: static/mirror pods and system-critical priority."""
    md = pod.get("metadata") or {}
    ann = md.get("annotations") or {}
    if ann.get("kubernetes.io/config.source", "api") != "api" or "kubernetes.io/config.mirror" in ann:
        return True
    return int((pod.get("spec") or {}).get("priority") or 0) >= SYSTEM_CRITICAL_PRIORITY


def reserved(spec: str) -> dict[str, int]:
    """``--kube-reserved``/``--system-reserved`` (``cpu=100m,memory=100Mi``) to milli-CPU and
    bytes: {"cpu": millis, "memory": bytes, "ephemeral-storage": bytes, "pid": n}."""
    out: dict[str, int] = {}
    for part in [p.strip() for p in (spec or "").split(",") if p.strip()]:
        k, sep, v = part.partition("=")
        if not sep:
            raise ValueError(f"invalid reservation {part!r}: want name=quantity")
        k = k.strip()
        if k not in ("cpu", "memory", "ephemeral-storage", "pid"):
            raise ValueError(f"unsupported reservation {k!r}")
        q = parse_quantity(v.strip())
        out[k] = int(q * 1000) if k == "cpu" else int(q)
    return out
