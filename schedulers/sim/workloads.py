"""The openb workload variants, re-made from the default pod list the way the public release
describes them, for evaluating on lists that were never trained on (issue 17, item 3).

Why: the public release has seventeen pod lists; five are in ``../shared/traces/openb``. The
others are variants of the default list sampled by the published generators (more or fewer
CPU-only tasks, GPU-sharing tasks, multi-GPU tasks, GPU-model constraints). We re-implement
the sampling from its description (and check it against the five shared lists' statistics,
``tests/unit/test_openb_workloads.py``), with seeds that no training run uses:

- ``cpuNNN``: CPU-only tasks are NNN/10 % of all tasks (default: 13.3 %); every GPU task is
  kept, CPU-only tasks are subsampled (or, above the default's count, all kept plus draws
  with replacement). cpu050 is the shared 5 % list.
- ``gpushareNN``: GPU-sharing tasks request NN % of the GPU (default: 28.5 %); CPU-only tasks
  are kept, each GPU task slot is redrawn from the default's sharing tasks with probability
  q or its whole-GPU tasks otherwise, q solving q*mS / (q*mS + (1-q)*mW) = NN % (mS, mW the
  pools' mean GPU request).
- ``multigpuNN``: multi-GPU tasks request NN % of the GPU (default 7.3 %): the default list
  plus multi-GPU tasks drawn from its own until the share is reached (above 130 % of the
  cluster this exercises the protocol's tune-down path).
- ``gpuspecNN``: NN % of the GPU tasks get a GPU-model constraint, drawn from the constraints
  the shared gpuspec10 list gives tasks of the same kind and GPU count.

Names are renumbered ``openb-pod-0000...`` in list order, the CSV columns are the shared
lists' (timestamps left empty: the protocol ignores them).

Neighbours: ``schedulers.sim.compare`` (evaluates on these), ``schedulers.gpu.traces``.
"""

from __future__ import annotations

import csv
import re
import zlib
from collections import Counter
from pathlib import Path
from typing import Sequence

import numpy as np

from schedulers.gpu.traces import PodRecord, load_pods

SHARED_LISTS = ("default", "cpu050", "gpushare40", "multigpu20", "gpuspec10")
# the public release's other twelve variants, which are not in the shared folder
HELDOUT_LISTS = ("cpu100", "cpu200", "cpu250", "gpushare20", "gpushare60", "gpushare80",
                 "multigpu30", "multigpu40", "multigpu50", "gpuspec20", "gpuspec25", "gpuspec33")
HELDOUT_SEED = 17_017   # no training run draws from it (training seeds: 0.., 100001..)

_NAME = re.compile(r"^(cpu|gpushare|multigpu|gpuspec)(\d+)$")


def _rename(pods: Sequence[PodRecord]) -> list[PodRecord]:
    return [PodRecord(f"openb-pod-{i:04d}", p.cpu, p.mem, p.count, p.milli, p.types) for i, p in enumerate(pods)]


def _with_types(p: PodRecord, types: tuple[str, ...]) -> PodRecord:
    return PodRecord(p.name, p.cpu, p.mem, p.count, p.milli, types)


def cpu_variant(base: Sequence[PodRecord], frac: float, rng: np.random.Generator) -> list[PodRecord]:
    cpu_idx = [i for i, p in enumerate(base) if p.milli <= 0]
    gpu_n = len(base) - len(cpu_idx)
    want = int(round(frac * gpu_n / (1.0 - frac)))
    if want <= len(cpu_idx):
        keep = set(int(i) for i in rng.choice(cpu_idx, size=want, replace=False))
        extra: list[PodRecord] = []
    else:
        keep = set(cpu_idx)
        extra = [base[int(i)] for i in rng.choice(cpu_idx, size=want - len(cpu_idx), replace=True)]
    out = [p for i, p in enumerate(base) if p.milli > 0 or i in keep] + extra
    return _rename(out)


def gpushare_variant(base: Sequence[PodRecord], frac: float, rng: np.random.Generator) -> list[PodRecord]:
    share = [p for p in base if p.kind == "share"]
    whole = [p for p in base if p.kind == "whole"]
    ms = float(np.mean([p.tot for p in share]))
    mw = float(np.mean([p.tot for p in whole]))
    q = frac * mw / (ms * (1.0 - frac) + frac * mw)
    out = []
    for p in base:
        if p.milli <= 0:
            out.append(p)
        elif rng.random() < q:
            out.append(share[int(rng.integers(len(share)))])
        else:
            out.append(whole[int(rng.integers(len(whole)))])
    return _rename(out)


def multigpu_variant(base: Sequence[PodRecord], frac: float, rng: np.random.Generator) -> list[PodRecord]:
    multi = [p for p in base if p.milli > 0 and p.count > 1]
    out = list(base)
    total = sum(p.tot for p in out)
    m = sum(p.tot for p in multi)
    while m < frac * total:
        p = multi[int(rng.integers(len(multi)))]
        out.append(p)
        total += p.tot
        m += p.tot
    return _rename(out)


def _kind(p: PodRecord) -> tuple[str, int]:
    return p.kind, p.count


def gpuspec_variant(base: Sequence[PodRecord], frac: float, rng: np.random.Generator,
                    spec_source: Sequence[PodRecord]) -> list[PodRecord]:
    """``frac`` of the GPU tasks, chosen uniformly, get a constraint drawn from the source's
    constraints *of the same kind and GPU count* (shared tasks ask for T4/P100, 8-GPU tasks
    for G2, ...: a constraint no node can serve would just fail the task), falling back to
    the same kind, then to any."""
    specs = Counter((_kind(p), p.types) for p in spec_source if p.milli > 0 and p.types)
    if not specs:
        raise ValueError("the spec source list has no GPU-model constraints")

    def dist(pred) -> tuple[list[tuple[str, ...]], np.ndarray] | None:
        keys = sorted(t for (k, t) in specs if pred(k))
        if not keys:
            return None
        w = np.array([sum(c for (k, t), c in specs.items() if t == key and pred(k)) for key in keys], np.float64)
        return keys, w / w.sum()

    cache: dict[tuple[str, int], tuple[list[tuple[str, ...]], np.ndarray]] = {}
    gpu_idx = [i for i, p in enumerate(base) if p.milli > 0]
    pick = set(int(i) for i in rng.choice(gpu_idx, size=int(round(frac * len(gpu_idx))), replace=False))
    out = []
    for i, p in enumerate(base):
        if i not in pick:
            out.append(_with_types(p, ()))
            continue
        k = _kind(p)
        if k not in cache:
            cache[k] = (dist(lambda x: x == k) or dist(lambda x: x[0] == k[0]) or dist(lambda x: True))  # type: ignore[assignment]
        keys, prob = cache[k]
        out.append(_with_types(p, keys[int(rng.choice(len(keys), p=prob))]))
    return _rename(out)


def make_variant(name: str, traces: Path, seed: int = HELDOUT_SEED) -> list[PodRecord]:
    """Pod list ``name`` (e.g. ``gpushare60``) sampled from the default list with ``seed``."""
    m = _NAME.match(name)
    if not m:
        raise ValueError(f"unknown openb variant {name!r} (cpuNNN, gpushareNN, multigpuNN, gpuspecNN)")
    kind, num = m.group(1), int(m.group(2))
    frac = num / 1000.0 if kind == "cpu" else num / 100.0
    base = load_pods(traces / "openb_pod_list_default.csv")
    rng = np.random.default_rng([seed, hash_name(name)])
    if kind == "cpu":
        return cpu_variant(base, frac, rng)
    if kind == "gpushare":
        return gpushare_variant(base, frac, rng)
    if kind == "multigpu":
        return multigpu_variant(base, frac, rng)
    return gpuspec_variant(base, frac, rng, load_pods(traces / "openb_pod_list_gpuspec10.csv"))


def hash_name(name: str) -> int:
    """A stable integer per list name (Python's ``hash`` is salted per process)."""
    return zlib.crc32(name.encode())


def write_csv(pods: Sequence[PodRecord], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli", "gpu_spec"])
        for p in pods:
            w.writerow([p.name, p.cpu, p.mem, p.count, p.milli if p.count > 0 else 0, "|".join(p.types)])


def materialise(names: Sequence[str], traces: Path, out: Path, seed: int = HELDOUT_SEED) -> dict[str, Path]:
    """Write ``openb_pod_list_<name>.csv`` for every variant into ``out`` (cached: an existing
    file is kept); shared lists map to the traces folder."""
    paths = {}
    for n in names:
        if n in SHARED_LISTS:
            paths[n] = traces / f"openb_pod_list_{n}.csv"
            continue
        p = out / f"openb_pod_list_{n}.csv"
        if not p.exists():
            write_csv(make_variant(n, traces, seed), p)
        paths[n] = p
    return paths
