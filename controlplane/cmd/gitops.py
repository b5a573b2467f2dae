"""``controlplane gitops-controller``: the GitOps controller (``controlplane/gitops``) as its own
process; ``controlplane up`` runs it too.

    controlplane gitops-controller [--kubeconfig K | --master URL] [--data-dir DIR]
        [--webhook-host H] [--webhook-port P] [--manifests-dir DIR | --no-manifests]
        [--manifests-interval S] [--metrics-port P] [--leader-elect[=false]] [--no-install-crds]

Logging, signals, the metrics port and leader election come from ``cmd.bootstrap``: only the
holder of the ``kube-system/gitops-controller`` Lease reconciles (as Flux's controllers elect a
leader), so a second copy waits as a standby. ``--data-dir`` (default ``.data``) holds the
artifacts (``DIR/gitops``), the manifests folder (``DIR/manifests``) and the metrics port file.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from controlplane.client.rest import RestClient
from controlplane.cmd import bootstrap

COMPONENT = bootstrap.Component("gitops-controller", lease="gitops-controller")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gitops-controller", help="run the GitOps controller (Git sources, syncs, webhooks, manifests folder)")
    p.add_argument("--kubeconfig", type=Path, default=None, help="default DATA_DIR/kubeconfig")
    p.add_argument("--master", default="", help="apiserver URL (instead of --kubeconfig)")
    p.add_argument("--webhook-host", default="127.0.0.1")
    p.add_argument("--webhook-port", type=int, default=9292,
                   help="0: a free port (the address is written to DATA_DIR/gitops/webhook-address)")
    p.add_argument("--no-webhook-port-fallback", action="store_true",
                   help="fail instead of using a free port when the port is busy")
    p.add_argument("--manifests-dir", type=Path, default=None, help="default DATA_DIR/manifests")
    p.add_argument("--no-manifests", action="store_true", help="do not watch a manifests folder")
    p.add_argument("--manifests-interval", type=float, default=600.0, help="drift correction interval of manifest files (s)")
    p.add_argument("--no-install-crds", action="store_true")
    bootstrap.add_flags(p, COMPONENT)
    p.set_defaults(func=lambda a: bootstrap.run(COMPONENT, a, _main))


async def _main(ctx: bootstrap.Context) -> int:
    from controlplane.gitops.operator import Config, run

    args = ctx.args
    data_dir = (args.data_dir or Path(".data")).resolve()
    if args.master:
        client = RestClient(args.master, lite_http=True, user_agent="gitops-controller")
    else:
        client = RestClient.from_kubeconfig(args.kubeconfig or data_dir / "kubeconfig", lite_http=True,
                                            user_agent="gitops-controller")
    manifests = None if args.no_manifests else (args.manifests_dir or data_dir / "manifests").resolve()
    cfg = Config(client=client, data_dir=data_dir, webhook_host=args.webhook_host, webhook_port=args.webhook_port,
                 webhook_port_fallback=not args.no_webhook_port_fallback, manifests_dir=manifests,
                 manifests_interval=args.manifests_interval, install_crds=not args.no_install_crds,
                 signal_stop=ctx.stop)

    async def work(stop: asyncio.Event) -> None:
        await run(cfg, stop)

    try:
        return await ctx.run_leading(client, work)
    finally:
        await client.close()
