"""``controlplane apiserver --port P --etcd-endpoints URL,...``: the apiserver alone, in the
foreground, until SIGINT/SIGTERM. ``controlplane up`` runs this as a child process."""

from __future__ import annotations

import argparse
import asyncio
import signal

from controlplane.log import get_logger

log = get_logger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("apiserver", help="run the Kubernetes-compatible API server")
    p.add_argument("--port", type=int, default=6443)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--etcd-endpoints", required=True, help="comma-separated etcd client URLs")
    p.add_argument("--service-cidr", default="10.96.0.0/12")
    p.add_argument("--compaction-interval", type=float, default=300.0,
                   help="seconds between etcd compactions (0: never)")
    p.set_defaults(func=run)


async def main(args: argparse.Namespace) -> None:
    from controlplane.apiserver.app import ApiServer, serve
    from controlplane.storage.etcd import EtcdBackend

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    backend = EtcdBackend(args.etcd_endpoints)
    api = ApiServer(backend, service_cidr=args.service_cidr, compaction_interval=args.compaction_interval)
    await serve(api, args.host, args.port, stop)


def run(args: argparse.Namespace) -> int:
    import uvloop  # ships with sanic

    uvloop.run(main(args))
    return 0
