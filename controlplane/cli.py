"""The one CLI entry: ``controlplane up|down|etcd-snapshot|secrets-encrypt|certificate|chaos|fuzz|apiserver|controller-manager|scheduler|agent|metrics-server|metrics-adapter|proxy|dns|ingress-controller|gitops-controller|gitops|dashboard|ddqn|ddqn-retrainer|bench``.

Each subcommand lives in its own module under ``controlplane.cmd`` exposing
``register(subparsers)``; the parser's ``func`` attribute runs the command (through
``cmd.bootstrap``: logging, signals, metrics, leader election). Only the chosen subcommand's
module is imported (a scheduler process never loads the apiserver); ``--help`` without a
subcommand imports them all to list them.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# subcommand -> the module providing it, in help order
SUBCOMMANDS = {
    "up": "controlplane.cmd.up",
    "down": "controlplane.cmd.down",
    "apiserver": "controlplane.cmd.apiserver",
    "controller-manager": "controlplane.cmd.controller_manager",
    "scheduler": "controlplane.cmd.scheduler",
    "agent": "controlplane.cmd.agent",
    "metrics-server": "controlplane.cmd.metrics_server",
    "metrics-adapter": "controlplane.cmd.metrics_adapter",
    "proxy": "controlplane.cmd.proxy",
    "dns": "controlplane.cmd.dns",
    "gitops-controller": "controlplane.cmd.gitops",
    "gitops": "controlplane.cmd.gitops_cli",
    "dashboard": "controlplane.cmd.dashboard",
    "ingress-controller": "controlplane.cmd.ingress",
    "ddqn": "controlplane.cmd.ddqn",
    "ddqn-retrainer": "controlplane.cmd.ddqn_retrainer",
    "bench": "controlplane.cmd.bench",
    "kubeconfig": "controlplane.cmd.kubeconfig",
    "token": "controlplane.cmd.token",
    "etcd-snapshot": "controlplane.cmd.etcd_snapshot",
    "secrets-encrypt": "controlplane.cmd.secrets_encrypt",
    "certificate": "controlplane.cmd.certificate",
    "chaos": "controlplane.cmd.chaos",
    "fuzz": "controlplane.cmd.fuzz",
}
_GLOBAL_WITH_VALUE = ("--log-format", "--log-level")


def _chosen(argv: list[str]) -> str | None:
    """The subcommand named on the command line (None when there is none yet)."""
    it = iter(argv)
    for a in it:
        if a in _GLOBAL_WITH_VALUE:
            next(it, None)
        elif not a.startswith("-"):
            return a
    return None


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="controlplane", description=__doc__.splitlines()[0])
    parser.add_argument("--log-format", choices=["json", "console"], default=None)
    parser.add_argument("--log-level", default=None)
    sub = parser.add_subparsers(dest="command", required=True)
    chosen = _chosen(sys.argv[1:] if argv is None else argv)
    for name, module in SUBCOMMANDS.items():
        if chosen in SUBCOMMANDS and name != chosen:
            continue
        importlib.import_module(module).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser(argv).parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
