"""The side-by-side table of issue 17: every pod list (the five shared ones and the twelve
re-made held-out variants, ``workloads``), seeds 42-51, at 100 % and 130 %: Random, BestFit,
FGD, the search baselines (FGDLookahead, FGDSearch), DDQN and the upper bound (``bound``).

``python -m schedulers.sim.compare --out DIR [--lists a,b] [--policies P,Q] [--seeds 42-51]
[--jobs 2]`` writes one JSON line per (list, policy, seed) to ``DIR/results.jsonl`` (resumable:
rows already there are skipped), the variant CSVs to ``DIR/lists/``, and prints the Markdown
table of means with "seeds better than FGD @130". Neighbours: ``openb`` (one run),
``bound``, ``workloads``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from schedulers.gpu.gorand import GoRand
from schedulers.gpu.traces import traces_dir
from schedulers.sim.__main__ import parse_seeds
from schedulers.sim.bound import column_bounds
from schedulers.sim.openb import Workload, arrival_order, run
from schedulers.sim.workloads import HELDOUT_LISTS, SHARED_LISTS, materialise

POLICIES = ("Random", "BestFit", "FGD", "FGDLookahead", "FGDSearch", "ddqn", "bound")
_WL: dict[str, Workload] = {}


def _workload(nodes: str, pods: str) -> Workload:
    wl = _WL.get(pods)
    if wl is None:
        wl = _WL[pods] = Workload.load(nodes, pods)
    return wl


def one(job: tuple[str, str, str, str, int]) -> dict:
    name, nodes, pods, policy, seed = job
    wl = _workload(nodes, pods)
    t0 = time.perf_counter()
    if policy == "bound":
        order = arrival_order(wl.pods, wl.new_state().gpu_capacity_milli(), GoRand(seed))
        b = column_bounds(wl.nodes, [wl.pods[j] for j in order])
        return {"list": name, "policy": policy, "seed": seed, "alloc_at_100": b.get(100), "alloc_at_130": b.get(130),
                "seconds": round(time.perf_counter() - t0, 2), "decision_ms": None}
    r = run(wl, policy, seed)
    return {"list": name, "policy": policy, "seed": seed, "alloc_at_100": r.alloc_at_100, "alloc_at_130": r.alloc_at_130,
            "seconds": round(r.seconds, 2), "decision_ms": round(r.decision_ms, 3)}


def table(rows: list[dict], lists: list[str], policies: list[str]) -> str:
    by = {(r["list"], r["policy"], r["seed"]): r for r in rows}
    head = "| pod list | " + " | ".join(policies) + " | DDQN − FGD @130 | DDQN seeds > FGD @130 |"
    out = [head, "|---" * (len(policies) + 3) + "|"]
    for n in lists:
        cells = []
        for p in policies:
            rs = [r for (l, q, _), r in by.items() if l == n and q == p]
            if not rs:
                cells.append("")
                continue
            m100 = np.mean([r["alloc_at_100"] for r in rs])
            m130 = np.mean([r["alloc_at_130"] for r in rs])
            cells.append(f"{m100:.2f} / {m130:.2f}" + (f" ({len(rs)})" if len(rs) != 10 else ""))
        seeds = sorted({s for (l, q, s) in by if l == n and q == "ddqn"} & {s for (l, q, s) in by if l == n and q == "FGD"})
        if seeds:
            d = [by[(n, "ddqn", s)]["alloc_at_130"] - by[(n, "FGD", s)]["alloc_at_130"] for s in seeds]
            cells += [f"{np.mean(d):+.2f}", f"{sum(x > 0 for x in d)}/{len(d)}"]
        else:
            cells += ["", ""]
        out.append(f"| {n} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def per_seed(rows: list[dict], lists: list[str], a: str = "ddqn", b: str = "FGD") -> str:
    """Per seed at 130 %: ``a`` / ``b`` (the model card's table)."""
    by = {(r["list"], r["policy"], r["seed"]): r["alloc_at_130"] for r in rows}
    seeds = sorted({s for (_, q, s) in by if q in (a, b)})
    out = ["| pod list | " + " | ".join(str(s) for s in seeds) + " |", "|---" * (len(seeds) + 1) + "|"]
    for n in lists:
        cells = []
        for s in seeds:
            x, y = by.get((n, a, s)), by.get((n, b, s))
            cells.append("" if x is None or y is None else f"{x:.2f} / {y:.2f}")
        if any(cells):
            out.append(f"| {n} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m schedulers.sim.compare")
    p.add_argument("--out", required=True)
    p.add_argument("--lists", default=",".join(SHARED_LISTS + HELDOUT_LISTS))
    p.add_argument("--policies", default=",".join(POLICIES))
    p.add_argument("--seeds", default="42-51")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--table-only", action="store_true")
    p.add_argument("--per-seed", action="store_true", help="also print DDQN / FGD per seed at 130 %%")
    a = p.parse_args(argv)
    d = traces_dir()
    if d is None:
        raise SystemExit("openb traces folder not found (set OPENB_TRACES)")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    lists = a.lists.split(",")
    policies = a.policies.split(",")
    paths = materialise(lists, d, out / "lists")
    res_file = out / "results.jsonl"
    rows = [json.loads(x) for x in res_file.read_text().splitlines()] if res_file.exists() else []
    done = {(r["list"], r["policy"], r["seed"]) for r in rows}
    nodes = str(d / "openb_node_list_gpu_node.csv")
    jobs = [(n, nodes, str(paths[n]), pol, s) for n in lists for s in parse_seeds(a.seeds) for pol in policies
            if (n, pol, s) not in done]
    if jobs and not a.table_only:
        with ProcessPoolExecutor(max_workers=a.jobs) as ex, open(res_file, "a") as fh:
            for r in ex.map(one, jobs, chunksize=1):
                fh.write(json.dumps(r) + "\n")
                fh.flush()
                rows.append(r)
    sys.stdout.write(table(rows, lists, policies) + "\n")
    if a.per_seed:
        sys.stdout.write("\n" + per_seed(rows, lists) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
