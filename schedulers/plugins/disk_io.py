"""DiskIO (``enhanced`` profile): pods annotated ``scheduling.controlplane.io/disk-io: high``
prefer nodes with fast disks. Node speed: annotation ``scheduling.controlplane.io/disk-iops``
(a number) or label ``node.controlplane.io/disk-type`` (nvme > ssd > hdd); normalised to 0..100
over the candidates. Other pods score every node 0 (neutral)."""

from __future__ import annotations

import numpy as np

from schedulers.framework.interface import Plugin
from schedulers.framework.registry import register

ANN_POD = "scheduling.controlplane.io/disk-io"
ANN_IOPS = "scheduling.controlplane.io/disk-iops"
LABEL_TYPE = "node.controlplane.io/disk-type"
TYPE_IOPS = {"nvme": 500000, "ssd": 50000, "hdd": 200}


def node_iops(node) -> float:
    raw = node.annotations.get(ANN_IOPS)
    if raw is not None:
        try:
            return float(raw)
        except ValueError:
            pass
    return float(TYPE_IOPS.get(node.labels.get(LABEL_TYPE, ""), 0))


def _wants_fast_disk(pod) -> bool:
    return ((pod.obj.get("metadata") or {}).get("annotations") or {}).get(ANN_POD) == "high"


@register
class DiskIO(Plugin):
    name = "DiskIO"
    uniform_raw = 0  # every node's raw score when uniform_score applies

    def uniform_score(self, cs, pod, snap) -> int | None:
        return None if _wants_fast_disk(pod) else 0  # all zero, normalised to 0

    def score(self, cs, pod, snap, idx: np.ndarray) -> np.ndarray:
        if not _wants_fast_disk(pod):
            return np.zeros(len(idx), dtype=np.int64)
        iops = snap.memo("disk_iops", lambda: np.array([node_iops(n) for n in snap.nodes], dtype=np.float64))
        return iops[idx]

    def normalize(self, cs, pod, snap, idx, scores: np.ndarray) -> np.ndarray:
        mx = float(np.max(scores)) if len(scores) else 0.0
        return (scores * 100 / mx).astype(np.int64) if mx > 0 else np.zeros(len(scores), dtype=np.int64)
