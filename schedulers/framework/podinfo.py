"""What the scheduler needs from a pod, parsed once: requests (effective, as Kubernetes
computes them from containers, init containers and overhead), host ports, tolerations,
affinity, priority (``resolve_priority``: the PriorityClass's value), and the GPU request as
the GPU policies see it (a ``schedulers.gpu.state.GpuPod``).

GPU conventions (shared with ``controlplane.agent.simulated`` and the docs):
- whole GPUs: resource ``nvidia.com/gpu: k`` (k GPUs of 1000 milli each);
- a share of one GPU: annotation ``scheduling.controlplane.io/gpu-milli: "460"`` (no
  ``nvidia.com/gpu`` request), optionally ``scheduling.controlplane.io/gpu-count``;
- GPU model constraint: annotation ``scheduling.controlplane.io/gpu-model: "T4|P100"``;
- the scheduler records the GPUs it chose in ``scheduling.controlplane.io/gpu-index: "0,1"``.
Neighbours: ``cache`` (accounts requests per node), ``scheduler`` (parses informer objects),
the plugins.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from controlplane.machinery.podresources import aggregate, host_ports
from controlplane.machinery.quantity import bytes_, cpu_millis, parse_quantity
from schedulers.gpu.state import GpuPod

GPU_RESOURCE = "nvidia.com/gpu"
ANN_GPU_MILLI = "scheduling.controlplane.io/gpu-milli"
ANN_GPU_COUNT = "scheduling.controlplane.io/gpu-count"
ANN_GPU_MODEL = "scheduling.controlplane.io/gpu-model"
ANN_GPU_INDEX = "scheduling.controlplane.io/gpu-index"
DEFAULT_MILLI_CPU = 100  # non-zero defaults used by scoring (Kubernetes' schedutil)
DEFAULT_MEMORY = 200 * 1024 * 1024


_QUANTITIES: dict[tuple[bool, Any], int] = {}


def quantity_value(resource: str, q: Any) -> int:
    """Integer amount: milli-CPU for ``cpu``, units (bytes, count) for everything else.
    Memoised: a cluster uses a handful of distinct quantity strings and parsing one
    (exact fractions) costs ~10 µs, several times per pod event."""
    key = (resource == "cpu", q)
    try:
        return _QUANTITIES[key]
    except KeyError:
        pass
    except TypeError:  # unhashable: not a quantity the apiserver would accept; parse (and fail) as before
        return cpu_millis(q) if key[0] else bytes_(q)
    v = cpu_millis(q) if key[0] else bytes_(q)
    if len(_QUANTITIES) > 4096:
        _QUANTITIES.clear()
    _QUANTITIES[key] = v
    return v


def resolve_priority(pod: dict, classes: dict[str, dict]) -> int:
    """The pod's priority: its PriorityClass's value (it wins over a defaulted
    ``spec.priority``), else ``spec.priority``, else the global default class's value, else 0."""
    spec = pod.get("spec") or {}
    name = spec.get("priorityClassName")
    if name and name in classes:
        return int(classes[name].get("value") or 0)
    if spec.get("priority") is not None:
        return int(spec["priority"])
    for pc in classes.values():
        if pc.get("globalDefault"):
            return int(pc.get("value") or 0)
    return 0


def parse_resources(d: dict | None) -> dict[str, int]:
    return {k: quantity_value(k, v) for k, v in (d or {}).items()}


def effective_requests(spec: dict) -> dict[str, int]:
    """The pod's requests as Kubernetes computes them (``PodRequests``): containers and sidecar
    (restartable init) containers summed, at least each init container next to the sidecars
    started before it (``machinery.podresources``), plus overhead."""
    total = aggregate(spec, "requests", quantity_value)
    for k, v in parse_resources(spec.get("overhead")).items():
        total[k] = total.get(k, 0) + v
    return total


def _nonzero(spec: dict, res: str, default: int) -> int:
    """``res`` with the non-zero default for every container that does not request it
    (``NonMissingContainerRequests``, init and sidecar containers included; no overhead)."""
    return aggregate(spec, "requests", quantity_value, non_missing={res: default}).get(res, 0)


# What PodInfo.from_pod reads from a pod's spec (besides nodeName, labels and annotations).
_SPEC_INPUTS = ("containers", "initContainers", "overhead", "tolerations", "affinity", "nodeSelector",
                "topologySpreadConstraints", "priority", "schedulerName")


def same_scheduling_inputs(old: dict, new: dict) -> bool:
    """True when ``PodInfo.from_pod`` would derive the same requests, GPU request, ports,
    tolerations, affinity and priority from ``new`` as from ``old`` (labels, nodeName and
    status may differ). Pods with a priorityClassName always count as changed (the class is
    resolved afresh)."""
    so, sn = old.get("spec") or {}, new.get("spec") or {}
    if sn.get("priorityClassName") or so.get("priorityClassName"):
        return False
    for k in _SPEC_INPUTS:
        if so.get(k) != sn.get(k):
            return False
    mo, mn = old.get("metadata") or {}, new.get("metadata") or {}
    return mo.get("annotations") == mn.get("annotations") and bool(mo.get("deletionTimestamp")) == bool(
        mn.get("deletionTimestamp"))


@dataclass
class PodInfo:
    obj: dict
    key: str
    uid: str
    namespace: str
    name: str
    labels: dict[str, str]
    priority: int
    scheduler_name: str
    node_name: str
    requests: dict[str, int]
    nonzero_cpu: int
    nonzero_mem: int
    ports: list[tuple[str, str, int]]  # (hostIP, protocol, hostPort)
    tolerations: list[dict]
    affinity: dict
    node_selector: dict[str, str]
    topology_spread: list[dict]
    images: list[str]
    gpu: GpuPod
    gpu_index: list[int] = field(default_factory=list)
    terminating: bool = False  # deletionTimestamp set: still holds its resources until it is gone
    attempts: int = 0
    timestamp: float = 0.0  # first time the queue saw it (arrival order)
    last_failure: float = -1.0
    cycle: int = 0

    @classmethod
    def from_pod(cls, pod: dict) -> "PodInfo":
        md = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        ann = md.get("annotations") or {}
        req = effective_requests(spec)
        # regular containers' and sidecars' hostPorts (getContainerPorts, 1.30+)
        ports = [(p.get("hostIP") or "0.0.0.0", p.get("protocol") or "TCP", int(p["hostPort"]))
                 for p in host_ports(spec)]
        whole = req.get(GPU_RESOURCE, 0)
        if whole > 0:
            count, milli = whole, 1000
        elif ANN_GPU_MILLI in ann:
            milli = max(0, min(1000, int(parse_quantity(str(ann[ANN_GPU_MILLI])))))
            count = int(ann.get(ANN_GPU_COUNT, 1)) if milli else 0
        else:
            count, milli = 0, 0
        types = tuple(t for t in str(ann.get(ANN_GPU_MODEL, "")).split("|") if t) if milli else ()
        idx_raw = str(ann.get(ANN_GPU_INDEX, "") or "")
        ns, name = md.get("namespace") or "default", md.get("name") or ""
        return cls(
            obj=pod, key=f"{ns}/{name}", uid=md.get("uid") or f"{ns}/{name}", namespace=ns, name=name,
            labels=dict(md.get("labels") or {}),
            priority=int(spec.get("priority") or 0),
            scheduler_name=spec.get("schedulerName") or "default-scheduler",
            node_name=spec.get("nodeName") or "",
            requests=req,
            nonzero_cpu=_nonzero(spec, "cpu", DEFAULT_MILLI_CPU),
            nonzero_mem=_nonzero(spec, "memory", DEFAULT_MEMORY),
            ports=ports,
            tolerations=list(spec.get("tolerations") or []),
            affinity=dict(spec.get("affinity") or {}),
            node_selector=dict(spec.get("nodeSelector") or {}),
            topology_spread=list(spec.get("topologySpreadConstraints") or []),
            images=[c.get("image", "") for c in spec.get("containers") or []],
            gpu=GpuPod(cpu=req.get("cpu", 0), mem=req.get("memory", 0) // (1024 * 1024), count=count,
                       milli=milli, types=types, name=name),
            gpu_index=[int(x) for x in idx_raw.split(",") if x.strip().isdigit()],
            terminating=bool(md.get("deletionTimestamp")),
        )

    @property
    def preemption_policy(self) -> str:
        return (self.obj.get("spec") or {}).get("preemptionPolicy") or "PreemptLowerPriority"
