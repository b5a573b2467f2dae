"""``controlplane gitops-controller``: the GitOps controller alone (``controlplane up`` runs it
too), and ``controlplane gitops ...``: its CLI (``controlplane/gitops/cli.py``).

    controlplane gitops-controller [--kubeconfig K | --master URL] [--data-dir DIR]
        [--webhook-host H] [--webhook-port P] [--manifests-dir DIR | --no-manifests]
        [--manifests-interval S] [--metrics-port P] [--no-install-crds]
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from controlplane.log import get_logger

log = get_logger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gitops-controller", help="run the GitOps controller (Git sources, syncs, webhooks, manifests folder)")
    p.add_argument("--kubeconfig", type=Path, default=None)
    p.add_argument("--master", default="", help="apiserver URL (instead of --kubeconfig)")
    p.add_argument("--data-dir", type=Path, default=Path(".data"), help="artifacts under DIR/gitops, manifests in DIR/manifests")
    p.add_argument("--webhook-host", default="127.0.0.1")
    p.add_argument("--webhook-port", type=int, default=9292, help="0: a free port (the address is written to DIR/gitops/webhook-address)")
    p.add_argument("--no-webhook-port-fallback", action="store_true", help="fail instead of using a free port when the port is busy")
    p.add_argument("--manifests-dir", type=Path, default=None, help="default DIR/manifests")
    p.add_argument("--no-manifests", action="store_true", help="do not watch a manifests folder")
    p.add_argument("--manifests-interval", type=float, default=600.0, help="drift correction interval of manifest files (s)")
    p.add_argument("--metrics-port", type=int, default=0)
    p.add_argument("--no-install-crds", action="store_true")
    p.set_defaults(func=run)
    from controlplane.gitops import cli
    cli.register(sub)


async def main(args: argparse.Namespace) -> int:
    from controlplane.client.rest import RestClient
    from controlplane.gitops.operator import Config, install_signal_handlers, run as run_operator

    if args.master:
        client = RestClient(args.master, lite_http=True, user_agent="gitops-controller")
    else:
        client = RestClient.from_kubeconfig(args.kubeconfig or args.data_dir / "kubeconfig", lite_http=True,
                                            user_agent="gitops-controller")
    if args.metrics_port:
        from prometheus_client import start_http_server
        start_http_server(args.metrics_port, addr="127.0.0.1")
    data_dir = args.data_dir.resolve()
    manifests = None if args.no_manifests else (args.manifests_dir or data_dir / "manifests").resolve()
    cfg = Config(client=client, data_dir=data_dir, webhook_host=args.webhook_host, webhook_port=args.webhook_port,
                 webhook_port_fallback=not args.no_webhook_port_fallback, manifests_dir=manifests,
                 manifests_interval=args.manifests_interval, install_crds=not args.no_install_crds,
                 handle_signals=True)
    stop = asyncio.Event()
    install_signal_handlers(stop)
    try:
        await run_operator(cfg, stop)
    finally:
        await client.close()
    return 0


def run(args: argparse.Namespace) -> int:
    return asyncio.run(main(args))
