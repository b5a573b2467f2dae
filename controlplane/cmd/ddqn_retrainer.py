"""``controlplane ddqn-retrainer --kubeconfig F --out DIR [--interval 86400] [--min-new 500]``:
the optional controller that retrains the DDQN scorer from the cluster's own history on a
schedule (``schedulers.ddqn.retrainer``), leader-elected on the ``kube-system/ddqn-retrainer``
Lease, metrics on ``--metrics-port``. Not started by ``controlplane up`` (training takes minutes
of CPU): run it where that CPU is available.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from controlplane.client.rest import RestClient
from controlplane.cmd import bootstrap
from controlplane.cmd.ddqn import openb_lists
from schedulers.ddqn import retrainer

COMPONENT = bootstrap.Component("ddqn-retrainer", lease="ddqn-retrainer")


async def _main(ctx: bootstrap.Context) -> int:
    args = ctx.args
    client = RestClient.from_kubeconfig(args.kubeconfig, user_agent="ddqn-retrainer")
    cfg = retrainer.config(Path(args.out), openb_lists=openb_lists(args.openb), logs=[Path(p) for p in args.log],
                           episodes=args.episodes, seeds=tuple(int(s) for s in args.seeds.split(",")),
                           recent=args.recent, margin=args.margin)

    async def work(stop: asyncio.Event) -> None:
        await retrainer.run(client, cfg, stop, interval=args.interval, min_new=args.min_new)

    try:
        return await ctx.run_leading(client, work)
    finally:
        await client.close()


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ddqn-retrainer", help="retrain the DDQN scorer from the cluster's history on a schedule")
    p.add_argument("--kubeconfig", type=Path, required=True)
    p.add_argument("--out", required=True, help="work directory (one sub-directory per pass)")
    p.add_argument("--interval", type=float, default=86400.0, help="seconds between passes")
    p.add_argument("--min-new", type=int, default=500, help="new decision records a pass needs")
    p.add_argument("--log", action="append", default=[], help="scheduling.log files to read as well")
    p.add_argument("--openb", default="default,cpu050,gpushare40,multigpu20,gpuspec10")
    p.add_argument("--episodes", type=int, default=26)
    p.add_argument("--seeds", default="42,43,44")
    p.add_argument("--recent", type=int, default=2000)
    p.add_argument("--margin", type=float, default=0.0)
    bootstrap.add_flags(p, COMPONENT)
    p.set_defaults(func=lambda a: bootstrap.run(COMPONENT, a, _main))
