"""``controlplane bench <name>``: benchmarks that print JSON figures.

Each benchmark is a module ``controlplane.bench.<name>`` exposing ``register(subparsers)``
(it adds its own sub-parser and sets ``func``). Present: api, controllers, startup, scheduling, autoscaling, gitops, authz,
openb-live, dashboard, services.
A benchmark is a one-shot command that runs its own event loop and child processes; from
``cmd.bootstrap`` it takes the logging set-up.
"""

from __future__ import annotations

import argparse

from controlplane.bench import api, authz, autoscaling, controllers, dashboard, gitops, openb_live, scheduling, services, startup
from controlplane.cmd import bootstrap

COMPONENT = bootstrap.Component("bench", metrics_port=False)

BENCHMARKS = [api, controllers, startup, scheduling, autoscaling, gitops, authz, openb_live, dashboard, services]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="run a benchmark and print JSON figures")
    bsub = p.add_subparsers(dest="bench", required=True)
    for mod in BENCHMARKS:
        mod.register(bsub)
    for bp in bsub.choices.values():
        bp.set_defaults(func=_with_logging(bp.get_default("func")))


def _with_logging(func):  # type: ignore[no-untyped-def]
    def run(args: argparse.Namespace) -> int:
        bootstrap.setup_logging(COMPONENT, args)
        return func(args)
    return run
