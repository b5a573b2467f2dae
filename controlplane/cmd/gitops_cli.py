"""``controlplane gitops reconcile|suspend|resume|diff|tree``: the GitOps CLI
(``controlplane/gitops/cli.py``), a one-shot client of the cluster."""

from __future__ import annotations

import argparse

from controlplane.cmd import bootstrap

COMPONENT = bootstrap.Component("gitops", metrics_port=False)


def register(sub: argparse._SubParsersAction) -> None:
    from controlplane.gitops import cli

    cli.register(sub)
    p = sub.choices["gitops"]
    func = p.get_default("func")

    def run(args: argparse.Namespace) -> int:
        bootstrap.setup_logging(COMPONENT, args)
        return func(args)
    p.set_defaults(func=run)
