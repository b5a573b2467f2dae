"""The one CLI entry: ``controlplane up|apiserver|controller-manager|scheduler|agent|proxy|dns|bench``.

Each subcommand lives in its own module under ``controlplane.cmd`` exposing
``register(subparsers)``; the parser's ``func`` attribute runs the command.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from controlplane import log

# Modules providing subcommands, in help order.
SUBCOMMAND_MODULES = [
    "controlplane.cmd.up",
    "controlplane.cmd.apiserver",
    "controlplane.cmd.controller_manager",
    "controlplane.cmd.scheduler",
    "controlplane.cmd.agent",
    "controlplane.cmd.proxy",
    "controlplane.cmd.dns",
    "controlplane.cmd.bench",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="controlplane", description=__doc__.splitlines()[0])
    parser.add_argument("--log-format", choices=["json", "console"], default=None)
    parser.add_argument("--log-level", default=None)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMAND_MODULES:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:  # that subcommand is not part of this build
                continue
            raise
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    log.configure(args.log_format, args.log_level)
    rc = args.func(args)
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
