"""The fidelity table: every (pod list, policy) of the FGD paper, measured against the
published means (``scheduling.md`` section 3).

``python -m schedulers.sim.table [--lists default,cpu050] [--policies FGD,BestFit]
[--seeds 42-51] [--json]`` runs the grid and prints a Markdown table (or JSON) with the
measured means, the published means and the largest deviation. Neighbours:
``schedulers.sim.openb`` (one run), ``tests/integration/test_openb_fidelity.py`` (the check).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from schedulers.sim.__main__ import parse_seeds
from schedulers.sim.openb import Workload, run_seeds
from schedulers.gpu.traces import traces_dir

POLICIES = ["Random", "DotProd", "GpuClustering", "GpuPacking", "BestFit", "FGD"]
LISTS = ["default", "cpu050", "gpushare40", "multigpu20", "gpuspec10"]

# Published means over seeds 42-51 (GPU allocated %, column 100 / column 130).
PUBLISHED: dict[str, dict[str, tuple[float, float]]] = {
    "default": {"Random": (86.30, 87.47), "DotProd": (90.62, 90.85), "GpuClustering": (91.65, 91.88),
                "GpuPacking": (91.78, 92.00), "BestFit": (92.86, 93.08), "FGD": (95.23, 95.39)},
    "cpu050": {"Random": (89.02, 91.24), "DotProd": (93.03, 93.27), "GpuClustering": (93.52, 93.79),
               "GpuPacking": (93.46, 93.72), "BestFit": (93.56, 93.79), "FGD": (95.00, 95.21)},
    "gpushare40": {"Random": (84.86, 86.00), "DotProd": (89.30, 89.56), "GpuClustering": (89.76, 90.02),
                   "GpuPacking": (89.77, 90.03), "BestFit": (91.44, 91.69), "FGD": (93.96, 94.15)},
    "multigpu20": {"Random": (86.92, 88.69), "DotProd": (91.85, 92.06), "GpuClustering": (93.34, 93.56),
                   "GpuPacking": (93.50, 93.71), "BestFit": (93.73, 93.93), "FGD": (95.53, 95.65)},
    "gpuspec10": {"Random": (86.26, 87.43), "DotProd": (90.17, 90.39), "GpuClustering": (91.96, 92.18),
                  "GpuPacking": (92.24, 92.46), "BestFit": (93.10, 93.30), "FGD": (94.66, 94.95)},
}


def measure(lists: list[str], policies: list[str], seeds: list[int]) -> list[dict]:
    d = traces_dir()
    if d is None:
        raise FileNotFoundError("openb traces folder not found (set OPENB_TRACES)")
    rows = []
    for name in lists:
        wl = Workload.load(d / "openb_node_list_gpu_node.csv", d / f"openb_pod_list_{name}.csv")
        for pol in policies:
            r = run_seeds(wl, pol, seeds)
            pub = PUBLISHED.get(name, {}).get(pol)
            rows.append({
                "list": name, "policy": pol,
                "alloc_at_100": r["alloc_at_100"], "alloc_at_130": r["alloc_at_130"],
                "published_100": pub[0] if pub else None, "published_130": pub[1] if pub else None,
                "seconds_per_run": r["seconds_per_run"],
            })
    return rows


def deviation(row: dict) -> float | None:
    if row["published_100"] is None:
        return None
    return max(abs(row["alloc_at_100"] - row["published_100"]), abs(row["alloc_at_130"] - row["published_130"]))


def markdown(rows: list[dict]) -> str:
    pols = list(dict.fromkeys(r["policy"] for r in rows))
    out = ["| pod list | " + " | ".join(pols) + " |", "|---" * (len(pols) + 1) + "|"]
    for name in dict.fromkeys(r["list"] for r in rows):
        cells = []
        for p in pols:
            r = next((x for x in rows if x["list"] == name and x["policy"] == p), None)
            cells.append("" if r is None else f"{r['alloc_at_100']:.2f} / {r['alloc_at_130']:.2f}")
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    devs = [d for d in (deviation(r) for r in rows) if d is not None]
    if devs:
        out.append("")
        out.append(f"largest deviation from the published means: {max(devs):.2f} points")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m schedulers.sim.table")
    p.add_argument("--lists", default=",".join(LISTS))
    p.add_argument("--policies", default=",".join(POLICIES))
    p.add_argument("--seeds", default="42-51")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    rows = measure(a.lists.split(","), a.policies.split(","), parse_seeds(a.seeds))
    if a.json:
        sys.stdout.write(json.dumps({"rows": rows, "seconds": round(time.perf_counter() - t0, 1)}) + "\n")
    else:
        sys.stdout.write(markdown(rows) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
