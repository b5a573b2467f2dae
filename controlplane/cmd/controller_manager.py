"""``controlplane controller-manager``: runs the workload controllers against an apiserver.

    controlplane controller-manager --kubeconfig F [--controllers a,b|*] [--leader-elect[=false]]
        [--leader-elect-lease-duration 15] [--leader-elect-renew-deadline 10]
        [--leader-elect-retry-period 2] [--identity ID] [--metrics-port P] [--data-dir DIR]

Leader election is on by default (as in kube-controller-manager): several processes may run;
only the holder of the ``kube-system/kube-controller-manager`` Lease acts, and a process that
loses the lease exits with status 1 so a supervisor restarts it as a standby. Logging, signals,
the metrics port and leader election come from ``cmd.bootstrap``; ``build_manager`` wires the
chosen controllers (``controlplane.controllers.<name>.setup(manager)``) into a ``Manager``.
"""

from __future__ import annotations

import argparse
from types import ModuleType

from controlplane.client.manager import Manager
from controlplane.client.rest import RestClient
from controlplane.cmd import bootstrap
from controlplane.controllers import (
    clusterroleaggregation, cronjob, csrapproving, csrsigning, daemonset, deployment, endpoints, endpointslice,
    garbagecollector, job, namespace, nodeipam, nodelifecycle, podgc, replicaset, replicationcontroller,
    resourcequota, rootcacertpublisher, serviceaccount, servicelb, statefulset,
)
from controlplane.log import get_logger

log = get_logger(__name__)

COMPONENT = bootstrap.Component("controller-manager", lease="kube-controller-manager", uvloop=False)

# kube-controller-manager's names -> the module whose setup(manager) registers that controller
CONTROLLERS: dict[str, ModuleType] = {
    "deployment": deployment, "replicaset": replicaset, "replicationcontroller": replicationcontroller,
    "statefulset": statefulset, "daemonset": daemonset, "job": job, "cronjob": cronjob,
    "garbagecollector": garbagecollector, "namespace": namespace, "endpoints": endpoints,
    "serviceaccount": serviceaccount, "nodelifecycle": nodelifecycle, "podgc": podgc,
    "clusterrole-aggregation": clusterroleaggregation, "root-ca-cert-publisher": rootcacertpublisher,
    "csrapproving": csrapproving, "csrsigning": csrsigning, "resourcequota": resourcequota,
    "endpointslice": endpointslice, "nodeipam": nodeipam, "servicelb": servicelb,
}
ALL_CONTROLLERS = list(CONTROLLERS)


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


def build_manager(client: RestClient, controllers: list[str], workers: dict[str, int] | None = None, *,
                  root_ca: str | None = None, signing: object = None,
                  options: dict[str, dict] | None = None) -> Manager:
    """``root_ca`` (PEM) feeds root-ca-cert-publisher, ``signing`` (a ``pki.CertKey``) csrsigning;
    without them those controllers stay idle. ``options``: per controller keyword arguments
    (``{"nodeipam": {"cluster_cidr": …}}``)."""
    mgr = Manager(client, name="controller-manager")
    mgr.root_ca = root_ca  # type: ignore[attr-defined]
    mgr.cluster_signing = signing  # type: ignore[attr-defined]
    for name in controllers:
        mod = CONTROLLERS[name]
        n = (workers or {}).get(name)
        kw = dict((options or {}).get(name) or {})
        mod.setup(mgr, workers=n, **kw) if n else mod.setup(mgr, **kw)
    return mgr


async def _main(ctx: bootstrap.Context) -> int:
    args = ctx.args
    if args.kubeconfig:
        client = RestClient.from_kubeconfig(args.kubeconfig, user_agent="controller-manager", max_connections=args.max_connections)
    elif args.master:
        client = RestClient(args.master, user_agent="controller-manager", max_connections=args.max_connections)
    else:
        raise SystemExit("--kubeconfig or --master is required")
    controllers = parse_controllers(args.controllers)
    root_ca = open(args.root_ca_file).read() if args.root_ca_file else None
    signing = None
    if args.cluster_signing_cert_file and args.cluster_signing_key_file:
        from controlplane.pki.certs import CertKey

        signing = CertKey.read(args.cluster_signing_cert_file, args.cluster_signing_key_file)
    log.info("controller-manager starting", controllers=controllers, leader_elect=args.leader_elect)
    try:
        options = {"nodeipam": {"cluster_cidr": args.cluster_cidr, "node_mask": args.node_cidr_mask_size}}
        mgr = build_manager(client, controllers, root_ca=root_ca, signing=signing, options=options)
        return await ctx.run_leading(client, mgr.start)
    finally:
        await client.close()


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("controller-manager", help="run the workload controllers")
    p.add_argument("--kubeconfig", help="kubeconfig of the apiserver")
    p.add_argument("--master", help="apiserver URL (instead of --kubeconfig)")
    p.add_argument("--controllers", default="*", help="comma list; '*' all, '-name' to disable")
    p.add_argument("--max-connections", type=int, default=128, help="concurrent HTTP connections to the apiserver")
    p.add_argument("--cluster-cidr", default="10.42.0.0/16", help="pod CIDR the node IPAM controller splits per node")
    p.add_argument("--node-cidr-mask-size", type=int, default=24)
    p.add_argument("--root-ca-file", default=None, help="cluster CA published as kube-root-ca.crt in every namespace")
    p.add_argument("--cluster-signing-cert-file", default=None, help="CA certificate csrsigning signs with")
    p.add_argument("--cluster-signing-key-file", default=None, help="its private key")
    bootstrap.add_flags(p, COMPONENT)
    p.set_defaults(func=lambda a: bootstrap.run(COMPONENT, a, _main))
