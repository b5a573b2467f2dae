"""``controlplane controller-manager``: runs the workload controllers against an apiserver.

    controlplane controller-manager --kubeconfig F [--leader-elect] [--controllers a,b|*]
        [--leader-elect-lease-duration 15] [--leader-elect-renew-deadline 10]
        [--leader-elect-retry-period 2] [--identity ID] [--metrics-port P]

With ``--leader-elect`` several processes may run; only the holder of the
``kube-system/kube-controller-manager`` Lease acts, and a process that loses the lease exits
with status 1 (as kube-controller-manager does) so a supervisor restarts it as a standby.
``build_manager``/``run`` are also used by ``controlplane up``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import signal
import socket

from controlplane.client.leaderelection import LeaderElectionConfig
from controlplane.client.manager import Manager
from controlplane.client.rest import RestClient
from controlplane.log import get_logger

log = get_logger(__name__)

ALL_CONTROLLERS = ["deployment", "replicaset", "statefulset", "daemonset", "job", "garbagecollector",
                   "namespace", "endpoints", "serviceaccount", "nodelifecycle", "endpointslice", "nodeipam",
                   "servicelb"]


def parse_controllers(spec: str | None) -> list[str]:
    """``*`` / ``a,b`` / ``*,-job`` (kube-controller-manager's syntax) to controller names."""
    if not spec:
        return list(ALL_CONTROLLERS)
    items = [s.strip() for s in spec.split(",") if s.strip()]
    chosen = list(ALL_CONTROLLERS) if "*" in items else []
    for it in items:
        if it == "*":
            continue
        if it.startswith("-"):
            chosen = [c for c in chosen if c != it[1:]]
        elif it in ALL_CONTROLLERS:
            if it not in chosen:
                chosen.append(it)
        else:
            raise SystemExit(f"unknown controller {it!r}; known: {', '.join(ALL_CONTROLLERS)}")
    return chosen


def build_manager(client: RestClient, controllers: list[str], leader_election: LeaderElectionConfig | None = None,
                  workers: dict[str, int] | None = None, options: dict[str, dict] | None = None) -> Manager:
    """``options``: per controller keyword arguments (``{"nodeipam": {"cluster_cidr": …}}``)."""
    mgr = Manager(client, name="controller-manager", leader_election=leader_election)
    for name in controllers:
        mod = importlib.import_module(f"controlplane.controllers.{name}")
        n = (workers or {}).get(name)
        kw = dict((options or {}).get(name) or {})
        mod.setup(mgr, workers=n, **kw) if n else mod.setup(mgr, **kw)
    return mgr


async def run(client: RestClient, controllers: list[str], stop_event: asyncio.Event,
              leader_election: LeaderElectionConfig | None = None, options: dict[str, dict] | None = None) -> Manager:
    mgr = build_manager(client, controllers, leader_election, options=options)
    await mgr.start(stop_event)
    return mgr


async def _main(args: argparse.Namespace) -> int:
    if args.kubeconfig:
        client = RestClient.from_kubeconfig(args.kubeconfig, user_agent="controller-manager", max_connections=args.max_connections)
    elif args.master:
        client = RestClient(args.master, user_agent="controller-manager", max_connections=args.max_connections)
    else:
        raise SystemExit("--kubeconfig or --master is required")
    le = None
    if args.leader_elect:
        ident = args.identity or f"{socket.gethostname()}_{os.getpid()}"
        le = LeaderElectionConfig(name=args.leader_elect_resource_name, namespace=args.leader_elect_resource_namespace,
                                  identity=ident, lease_duration=args.leader_elect_lease_duration,
                                  renew_deadline=args.leader_elect_renew_deadline,
                                  retry_period=args.leader_elect_retry_period)
    if args.metrics_port:
        from prometheus_client import start_http_server
        start_http_server(args.metrics_port, addr="127.0.0.1")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    controllers = parse_controllers(args.controllers)
    log.info("controller-manager starting", controllers=controllers, leader_elect=bool(le),
             identity=le.identity if le else None)
    try:
        options = {"nodeipam": {"cluster_cidr": args.cluster_cidr, "node_mask": args.node_cidr_mask_size}}
        mgr = await run(client, controllers, stop, le, options)
    finally:
        await client.close()
    if mgr.lost_leadership:
        log.error("leader election lost")
        return 1
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("controller-manager", help="run the workload controllers")
    p.add_argument("--kubeconfig", help="kubeconfig of the apiserver")
    p.add_argument("--master", help="apiserver URL (instead of --kubeconfig)")
    p.add_argument("--controllers", default="*", help="comma list; '*' all, '-name' to disable")
    p.add_argument("--leader-elect", action="store_true")
    p.add_argument("--leader-elect-lease-duration", type=float, default=15.0)
    p.add_argument("--leader-elect-renew-deadline", type=float, default=10.0)
    p.add_argument("--leader-elect-retry-period", type=float, default=2.0)
    p.add_argument("--leader-elect-resource-name", default="kube-controller-manager")
    p.add_argument("--leader-elect-resource-namespace", default="kube-system")
    p.add_argument("--identity", default=None)
    p.add_argument("--metrics-port", type=int, default=0)
    p.add_argument("--max-connections", type=int, default=128, help="concurrent HTTP connections to the apiserver")
    p.add_argument("--cluster-cidr", default="10.42.0.0/16", help="pod CIDR the node IPAM controller splits per node")
    p.add_argument("--node-cidr-mask-size", type=int, default=24)
    p.set_defaults(func=lambda a: asyncio.run(_main(a)))
