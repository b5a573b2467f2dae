"""CLI: ``python -m schedulers.ddqn train --pods FILE... --nodes FILE --out DIR``.

Trains the DDQN scorer from scratch on episodes drawn from the given pod lists (resized
clusters, resampled mixtures; see ``env.py``) and writes ``ddqn_openb.bin``, ``curves.json``
and ``curves.png`` into ``--out``. Prints the training summary as JSON. Copy the model file to
``schedulers/ddqn/ddqn_openb.bin`` to ship it. Neighbours: ``train.py``, ``env.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from schedulers.ddqn.env import EpisodeSpec, OpenbEnv
from schedulers.ddqn.train import TrainConfig, train
from schedulers.gpu.traces import load_nodes, load_pods


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m schedulers.ddqn")
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train the DDQN node scorer from scratch")
    t.add_argument("--pods", nargs="+", required=True, help="openb pod list CSVs to draw episodes from")
    t.add_argument("--nodes", required=True, help="node list CSV (the openb GPU nodes)")
    t.add_argument("--out", required=True, help="output directory")
    d = TrainConfig()
    t.add_argument("--episodes", type=int, default=d.episodes)
    t.add_argument("--seed", type=int, default=d.seed)
    t.add_argument("--threads", type=int, default=d.threads, help="torch CPU threads")
    t.add_argument("--eval-every", type=int, default=d.eval_every)
    t.add_argument("--nodes-min", type=int, default=EpisodeSpec.nodes_min)
    t.add_argument("--nodes-max", type=int, default=EpisodeSpec.nodes_max)
    t.add_argument("--kind-mix", type=float, default=EpisodeSpec.kind_mix,
                   help="share of episodes resampled by pod kind (random kind proportions)")
    t.add_argument("--learn-start", type=int, default=d.learn_start, help="buffer size before the first update")
    t.add_argument("--max-steps", type=int, default=None, help="stop after this many decisions (smoke tests)")
    t.add_argument("--search-features", action="store_true",
                   help="v2 rows: FGD-Search's goodhome cost per candidate as input (learning when to search)")
    t.add_argument("--init-from", default=None, help="start from this model file (a v1 model widens into v2)")
    t.add_argument("--search-prior", type=float, default=0.0,
                   help="v2: start as 'follow FGD-Search' (residual + this on the nodes it keeps; 0.045 = one score unit)")
    t.add_argument("--no-progress", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    spec = EpisodeSpec(nodes_min=args.nodes_min, nodes_max=args.nodes_max, kind_mix=args.kind_mix)
    env = OpenbEnv(load_nodes(args.nodes), [load_pods(p) for p in args.pods], spec,
                    search_features=args.search_features)
    cfg = TrainConfig(episodes=args.episodes, seed=args.seed, threads=args.threads, eval_every=args.eval_every,
                      episode=spec, max_steps=args.max_steps, learn_start=args.learn_start,
                      init_from=args.init_from, search_prior=args.search_prior)
    summary = train(env, cfg, Path(args.out), progress=not args.no_progress)
    sys.stdout.write(json.dumps(summary) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
