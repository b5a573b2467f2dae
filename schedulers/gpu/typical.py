"""FGD's target workload: the "typical pods" of a trace (``docs/openb-protocol.md`` R4.1).

Computed once from the original pod list (name order, untuned), CPU-only pods included,
popularity threshold 95 %. Neighbours: ``schedulers.gpu.policies.fgd`` and the DDQN
features consume a :class:`TypicalPods`; the live scheduler's GPU score plugins build one
from a pod list file or from the pods they have seen.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Protocol

import numpy as np


class _PodLike(Protocol):
    cpu: int
    milli: int
    count: int
    types: tuple[str, ...]

    @property
    def cpu_nz(self) -> int: ...


@dataclass(frozen=True)
class TypicalPods:
    """Parallel arrays over the taken keys, in popularity order."""

    cpu: np.ndarray  # int64 [T], cpu_nz of the key
    milli: np.ndarray  # int64 [T], per-GPU milli (0: CPU-only)
    count: np.ndarray  # int64 [T]
    types: tuple[tuple[str, ...], ...]  # accepted models per key (empty: any)
    freq: np.ndarray  # float64 [T], sums to 1

    def __len__(self) -> int:
        return len(self.freq)


def typical_pods(pods: Iterable[_PodLike], threshold: int = 95) -> TypicalPods:
    keys: Counter[tuple[int, int, int, str]] = Counter()
    total = 0
    for p in pods:
        keys[(p.cpu_nz, p.milli, p.count, "|".join(p.types))] += 1
        total += 1
    if total == 0:
        raise ValueError("typical pods of an empty pod list")
    ordered = sorted(keys.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)
    taken: list[tuple[tuple[int, int, int, str], int]] = []
    cum = 0
    for key, cnt in ordered:
        taken.append((key, cnt))
        cum += cnt
        if cum * 100 >= threshold * total:
            break
    norm = cum if len(taken) < len(ordered) else total
    return TypicalPods(
        cpu=np.array([k[0] for k, _ in taken], dtype=np.int64),
        milli=np.array([k[1] for k, _ in taken], dtype=np.int64),
        count=np.array([k[2] for k, _ in taken], dtype=np.int64),
        types=tuple(tuple(t for t in k[3].split("|") if t) for k, _ in taken),
        freq=np.array([(c / total) / (norm / total) for _, c in taken], dtype=np.float64),
    )
