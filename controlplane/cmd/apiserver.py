"""``controlplane apiserver --port P --etcd-endpoints URL,... [--workers N]``: the apiserver
alone, in the foreground, until SIGINT/SIGTERM. ``controlplane up`` runs this as a child process.

With ``--workers N`` (N > 1) this process is a small supervisor of N apiserver worker processes
sharing the port (``controlplane.apiserver.server.workers``); the hidden ``--worker i,N,FD`` flag is how
it starts each of them. Worker 0 alone runs the etcd compaction loop and the CRD start-up
reconciliation writes."""

from __future__ import annotations

import argparse
import asyncio
import sys

import structlog

from controlplane.apiserver.server.app import ApiServer, serve
from controlplane.apiserver.server.workers import WorkerLink, parse_worker_spec, reuse_port_socket, supervise, worker_argv
from controlplane.cmd import bootstrap
from controlplane.log import get_logger
from controlplane.storage.etcd import EtcdBackend

log = get_logger(__name__)

# metrics are served at /metrics on the apiserver's own port (as kube-apiserver does)
COMPONENT = bootstrap.Component("apiserver", metrics_port=False)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("apiserver", help="run the Kubernetes-compatible API server")
    p.add_argument("--port", type=int, default=6443)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--etcd-endpoints", required=True, help="comma-separated etcd client URLs")
    p.add_argument("--service-cidr", default="10.96.0.0/12")
    p.add_argument("--compaction-interval", type=float, default=300.0,
                   help="seconds between etcd compactions (0: never)")
    p.add_argument("--workers", type=int, default=1,
                   help="apiserver processes sharing the port (SO_REUSEPORT); >1 adds a supervisor")
    p.add_argument("--worker", default="", help=argparse.SUPPRESS)  # internal: "index,count,link-fd"
    bootstrap.add_flags(p, COMPONENT)
    p.set_defaults(func=run)


async def main(ctx: bootstrap.Context) -> None:
    args = ctx.args
    backend = EtcdBackend(args.etcd_endpoints)
    api = ApiServer(backend, service_cidr=args.service_cidr, compaction_interval=args.compaction_interval)
    await serve(api, args.host, args.port, ctx.stop)


async def worker_main(ctx: bootstrap.Context) -> None:
    """One worker of a supervised apiserver: today's ``serve`` on a SO_REUSEPORT socket, ready
    only when the supervisor says every worker is."""
    args = ctx.args
    index, count, fd = parse_worker_spec(args.worker)
    structlog.contextvars.bind_contextvars(worker=index)
    link = WorkerLink(fd)
    await link.open()
    watcher = asyncio.ensure_future(link.run(ctx.stop))
    try:
        backend = EtcdBackend(args.etcd_endpoints)
        primary = index == 0
        api = ApiServer(backend, service_cidr=args.service_cidr,
                        compaction_interval=args.compaction_interval if primary else 0.0, primary=primary)
        sock = reuse_port_socket(args.host, args.port)
        await serve(api, args.host, args.port, ctx.stop, sock=sock, gate=link.ready_gate, workers=count)
    finally:
        watcher.cancel()
        link.close()


async def supervisor_main(ctx: bootstrap.Context) -> int:
    # the supervisor installs its own SIGINT/SIGTERM handlers and forwards them to the workers
    return await supervise(worker_argv(sys.argv[1:]), ctx.args.workers)


def run(args: argparse.Namespace) -> int:
    if args.worker:
        return bootstrap.run(COMPONENT, args, worker_main)
    if args.workers > 1:
        if args.port == 0:
            bootstrap.setup_logging(COMPONENT, args)
            log.error("--workers needs a fixed --port (each worker binds it with SO_REUSEPORT)")
            return 2
        return bootstrap.run(COMPONENT, args, supervisor_main)
    return bootstrap.run(COMPONENT, args, main)
