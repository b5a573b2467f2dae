"""Reading the openb node and pod lists (CSV) into plain records.

Neighbours: ``schedulers.gpu.state`` turns the node records into numpy arrays,
``schedulers.sim.openb`` runs the protocol on the pod records, ``schedulers.gpu.typical``
derives FGD's typical pods from them (also for the live FGD/DDQN plugins' ``typicalPods``
argument), ``schedulers.ddqn`` trains on them. Only the columns the protocol uses are read
(``docs/openb-protocol.md`` R1.1/R1.2): timestamps, QoS and phase are ignored.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

GPU_MILLI = 1000  # milli-GPU per physical GPU
NODE_MAX_PODS = 1001  # the simulator's per-node pod limit (R1.1)


@dataclass(frozen=True)
class NodeRecord:
    name: str
    cpu_milli: int
    memory_mib: int
    gpu: int
    model: str  # "" when the node has no GPU model


class GpuDemand:
    """What GpuPod and PodRecord share: a CPU request, and ``count`` GPUs of ``milli`` each."""

    cpu: int
    count: int
    milli: int

    @property
    def cpu_nz(self) -> int:
        """Kubernetes' non-zero default CPU request (100m) used by scores and typical pods."""
        return self.cpu if self.cpu > 0 else 100

    @property
    def tot(self) -> int:
        return self.count * self.milli


@dataclass(frozen=True)
class PodRecord(GpuDemand):
    """One task: ``milli`` is the per-GPU request (0 for CPU-only pods), ``count`` the GPUs,
    ``types`` the accepted GPU models (empty tuple: any model)."""

    name: str
    cpu: int
    mem: int
    count: int
    milli: int
    types: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        """``cpu`` | ``share`` | ``whole`` (the protocol's pod classes)."""
        if self.milli <= 0:
            return "cpu"
        if self.count == 1 and self.milli < GPU_MILLI:
            return "share"
        return "whole"


def traces_dir() -> Path | None:
    """The openb folder: ``$OPENB_TRACES`` or ``../shared/traces/openb`` beside the repo root."""
    env = os.environ.get("OPENB_TRACES")
    if env:
        p = Path(env)
        return p if p.is_dir() else None
    p = Path(__file__).resolve().parents[2].parent / "shared" / "traces" / "openb"
    return p if p.is_dir() else None


def load_nodes(path: str | Path) -> list[NodeRecord]:
    """Nodes sorted by name in byte order (R1.1)."""
    out = []
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            out.append(
                NodeRecord(
                    name=row["sn"],
                    cpu_milli=int(row["cpu_milli"]),
                    memory_mib=int(row["memory_mib"]),
                    gpu=int(row.get("gpu") or 0),
                    model=(row.get("model") or "").strip(),
                )
            )
    out.sort(key=lambda n: n.name.encode())
    return out


def _milli(num_gpu: int, raw: str | None) -> int:
    if num_gpu <= 0:
        return 0
    if raw is None or raw == "":
        return GPU_MILLI
    m = int(float(raw))
    return min(max(m, 0), GPU_MILLI)


def load_pods(path: str | Path) -> list[PodRecord]:
    """Pods sorted by name in byte order (the original list W0 of R1.2)."""
    out = []
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        has_milli = "gpu_milli" in (reader.fieldnames or [])
        for row in reader:
            count = int(row.get("num_gpu") or 0)
            milli = _milli(count, row["gpu_milli"] if has_milli else None)
            spec = row.get("gpu_spec") or ""
            types = tuple(t for t in spec.split("|") if t) if milli > 0 else ()
            out.append(
                PodRecord(
                    name=row["name"],
                    cpu=int(row["cpu_milli"]),
                    mem=int(row["memory_mib"]),
                    count=count,
                    milli=milli,
                    types=types,
                )
            )
    out.sort(key=lambda p: p.name.encode())
    return out
