"""``controlplane bench <name>``: benchmarks that print JSON figures.

Each benchmark is a module ``controlplane.bench.<name>`` exposing ``register(subparsers)``
(it adds its own sub-parser and sets ``func``). Present: api, controllers, startup, scheduling, services.
"""

from __future__ import annotations

import argparse
import importlib

BENCHMARKS = ["api", "controllers", "startup", "scheduling", "services"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="run a benchmark and print JSON figures")
    bsub = p.add_subparsers(dest="bench", required=True)
    for name in BENCHMARKS:
        modname = f"controlplane.bench.{name}"
        try:
            mod = importlib.import_module(modname)
        except ModuleNotFoundError as e:
            if e.name == modname:
                continue
            raise
        mod.register(bsub)
