"""CLI: ``python -m schedulers.sim openb --pods FILE [--nodes FILE] --policy NAME --seeds 42-51 --json``.

Prints one JSON object (``policy``, ``seeds``, ``alloc_at_100``, ``alloc_at_130`` as means over
the seeds, ``per_seed``, ``seconds_per_run``, ``decision_ms``). Neighbour: ``schedulers.sim.openb``.
"""

from __future__ import annotations

import argparse
import json
import sys

from schedulers.sim.openb import Workload, run_seeds
from schedulers.gpu.policies import get_policy_factory, policy_names
from schedulers.gpu.traces import traces_dir


def parse_seeds(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if "-" in part[1:]:
            lo, hi = part.split("-", 1)
            out.extend(range(int(lo), int(hi) + 1))
        elif part:
            out.append(int(part))
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m schedulers.sim")
    sub = p.add_subparsers(dest="cmd", required=True)
    o = sub.add_parser("openb", help="run the openb GPU-sharing protocol")
    o.add_argument("--nodes", default=None, help="node list CSV (default: the openb GPU nodes)")
    o.add_argument("--pods", required=True, help="pod list CSV, or a workload name like 'default'")
    o.add_argument("--policy", required=True, help="policy name (e.g. " + "|".join(policy_names()) + ")")
    o.add_argument("--seeds", default="42-51", help="e.g. 42-51 or 42,43")
    o.add_argument("--json", action="store_true", help="print JSON (the only output format)")
    o.add_argument("--option", action="append", default=[], metavar="K=V", help="policy option")
    return p


def _resolve(path: str | None, default_name: str) -> str:
    if path and ("/" in path or path.endswith(".csv")):
        return path
    d = traces_dir()
    if d is None:
        raise SystemExit("openb traces folder not found (set OPENB_TRACES)")
    name = path or default_name
    return str(d / (name if name.endswith(".csv") else f"openb_pod_list_{name}.csv"))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    nodes = _resolve(args.nodes, "openb_node_list_gpu_node.csv")
    pods = _resolve(args.pods, "default")
    options = dict(kv.split("=", 1) for kv in args.option)
    try:
        get_policy_factory(args.policy)
    except KeyError as e:
        raise SystemExit(str(e.args[0]))
    wl = Workload.load(nodes, pods)
    out = run_seeds(wl, args.policy, parse_seeds(args.seeds), options)
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
