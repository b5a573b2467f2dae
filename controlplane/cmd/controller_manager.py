"""``controlplane controller-manager``: runs the workload controllers against an apiserver.

    controlplane controller-manager --kubeconfig F [--controllers a,b|*] [--leader-elect[=false]]
        [--leader-elect-lease-duration 15] [--leader-elect-renew-deadline 10]
        [--leader-elect-retry-period 2] [--identity ID] [--metrics-port P] [--data-dir DIR]
        [--job-pod-failure-backoff 10s] [--job-pod-failure-backoff-max 6m]
        [--mirroring-max-endpoints-per-subset 1000] [--mirroring-concurrent-service-endpoint-syncs 5]
        [--use-service-account-credentials]

Leader election is on by default (as in kube-controller-manager): several processes may run;
only the holder of the ``kube-system/kube-controller-manager`` Lease acts, and a process that
loses the lease exits with status 1 so a supervisor restarts it as a standby. Logging, signals,
the metrics port and leader election come from ``cmd.bootstrap``; ``build_manager`` wires the
chosen controllers (``controlplane.controllers.<name>.setup(manager)``) into a ``Manager``.

``--use-service-account-credentials`` (kube-controller-manager's flag; ``up`` sets it, as k3s
and kubeadm do): every controller writes as its own ServiceAccount in kube-system
(``SERVICE_ACCOUNTS``; ``client.clientbuilder``), authorized by the bootstrap ClusterRole
``system:controller:<name>``; informers, leader election and the token requests use the
kubeconfig's identity (``system:kube-controller-manager``). Without it every controller
writes as that identity.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
from types import ModuleType

from controlplane.client.clientbuilder import ServiceAccountClientBuilder
from controlplane.client.manager import Manager
from controlplane.client.rest import ApiStatusError, RestClient
from controlplane.cmd import bootstrap
from controlplane.controllers import (
    clusterroleaggregation, cronjob, csrapproving, csrsigning, daemonset, deployment, disruption, endpoints,
    endpointslice, endpointslicemirroring, garbagecollector, horizontalpodautoscaler, job, localpath, namespace,
    nodeipam, nodelifecycle, persistentvolume, podgc, pvcprotection, pvprotection, replicaset, replicationcontroller,
    resourcequota, rootcacertpublisher, serviceaccount, servicelb, statefulset, ttlafterfinished,
)
from controlplane.log import get_logger
from controlplane.machinery.timestamps import parse_duration

log = get_logger(__name__)

COMPONENT = bootstrap.Component("controller-manager", lease="kube-controller-manager", uvloop=False,
                                secure_metrics=True)

# kube-controller-manager's names -> the module whose setup(manager) registers that controller
CONTROLLERS: dict[str, ModuleType] = {
    "deployment": deployment, "replicaset": replicaset, "replicationcontroller": replicationcontroller,
    "statefulset": statefulset, "daemonset": daemonset, "job": job, "cronjob": cronjob,
    "ttl-after-finished": ttlafterfinished,
    "garbagecollector": garbagecollector, "namespace": namespace, "endpoints": endpoints,
    "serviceaccount": serviceaccount, "nodelifecycle": nodelifecycle, "podgc": podgc,
    "clusterrole-aggregation": clusterroleaggregation, "root-ca-cert-publisher": rootcacertpublisher,
    "csrapproving": csrapproving, "csrsigning": csrsigning, "resourcequota": resourcequota,
    "endpointslice": endpointslice, "endpointslicemirroring": endpointslicemirroring, "nodeipam": nodeipam,
    "servicelb": servicelb,
    "horizontalpodautoscaling": horizontalpodautoscaler, "disruption": disruption,
    "persistentvolume-binder": persistentvolume, "pvc-protection": pvcprotection, "pv-protection": pvprotection,
    "local-path-provisioner": localpath,
}
# controllers started only when the apiserver serves their resource (kube-controller-manager's
# AvailableResources check): group/version -> resource
REQUIRES: dict[str, tuple[str, str]] = {"horizontalpodautoscaling": ("autoscaling/v2", "horizontalpodautoscalers")}
ALL_CONTROLLERS = list(CONTROLLERS)


def service_account(controller: str) -> str:
    """The ServiceAccount (kube-system) controller ``controller`` writes as with
    ``--use-service-account-credentials`` (its module's ``SERVICE_ACCOUNT``)."""
    return str(CONTROLLERS[controller].SERVICE_ACCOUNT)


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _int_in(lo: int, hi: int):  # type: ignore[no-untyped-def]
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"must be between {lo} and {hi}, inclusive")
        return v
    return parse


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
                  options: dict[str, dict] | None = None,
                  credentials: ServiceAccountClientBuilder | None = None) -> Manager:
    """``root_ca`` (PEM) feeds root-ca-cert-publisher, ``signing`` (a ``pki.CertKey``) csrsigning;
    without them those controllers stay idle. ``options``: per controller keyword arguments
    (``{"nodeipam": {"cluster_cidr": …}}``). ``credentials``: the controllers write as their
    ServiceAccounts (``--use-service-account-credentials``)."""
    mgr = Manager(client, name="controller-manager", credentials=credentials)
    mgr.root_ca = root_ca  # type: ignore[attr-defined]
    mgr.cluster_signing = signing  # type: ignore[attr-defined]
    for name in controllers:
        mod = CONTROLLERS[name]
        kw = dict((options or {}).get(name) or {})
        n = (workers or {}).get(name)
        if n:
            kw["workers"] = n
        mod.setup(mgr, **kw)
    return mgr


async def served(client: RestClient, controllers: list[str]) -> list[str]:
    """The controllers whose required resources the apiserver serves (others are skipped with a
    log line, as kube-controller-manager does)."""
    need = {c: REQUIRES[c] for c in controllers if c in REQUIRES}
    if not need:
        return controllers
    out = []
    for c in controllers:
        if c not in need:
            out.append(c)
            continue
        gv, plural = need[c]
        try:
            lst = await client.request("GET", f"/apis/{gv}")
            ok = any(r.get("name") == plural for r in lst.get("resources") or [])
        except ApiStatusError:
            ok = False
        if ok:
            out.append(c)
        else:
            log.warning("controller disabled: its resource is not served", controller=c, resource=f"{plural}.{gv}")
    return out


async def _main(ctx: bootstrap.Context) -> int:
    args = ctx.args
    # lite_http: the lean keep-alive client for plain requests (as the scheduler): aiohttp's
    # ~150-200 µs of CPU per request was a large part of an HPA sync (its status PUT)
    if args.kubeconfig:
        client = RestClient.from_kubeconfig(args.kubeconfig, user_agent="controller-manager",
                                            max_connections=args.max_connections, lite_http=True)
    elif args.master:
        client = RestClient(args.master, user_agent="controller-manager", max_connections=args.max_connections,
                            lite_http=True)
    else:
        raise SystemExit("--kubeconfig or --master is required")
    controllers = parse_controllers(args.controllers)
    hpa = {"sync_period": args.horizontal_pod_autoscaler_sync_period,
           "downscale_stabilization": args.horizontal_pod_autoscaler_downscale_stabilization,
           "tolerance": args.horizontal_pod_autoscaler_tolerance,
           "workers": args.concurrent_horizontal_pod_autoscaler_syncs}
    root_ca = open(args.root_ca_file).read() if args.root_ca_file else None
    signing = None
    if args.cluster_signing_cert_file and args.cluster_signing_key_file:
        from controlplane.pki.certs import CertKey

        signing = CertKey.read(args.cluster_signing_cert_file, args.cluster_signing_key_file)
    # client-go's DynamicControllerClientBuilder over AnonymousClientConfig: one client per
    # controller, same servers, no client certificate, a ServiceAccount token of its own
    credentials = ServiceAccountClientBuilder(client, user_agent="controller-manager",
                                              max_connections=args.max_connections, lite_http=True) \
        if args.use_service_account_credentials else None
    try:
        controllers = await served(client, controllers)
        log.info("controller-manager starting", controllers=controllers, leader_elect=args.leader_elect,
                 service_account_credentials=credentials is not None)
        options = {"nodeipam": {"cluster_cidr": args.cluster_cidr, "node_mask": args.node_cidr_mask_size},
                   "horizontalpodautoscaling": hpa,
                   "job": {"pod_failure_backoff": args.job_pod_failure_backoff,
                           "pod_failure_backoff_max": args.job_pod_failure_backoff_max},
                   "endpointslicemirroring": {
                       "max_endpoints_per_subset": args.mirroring_max_endpoints_per_subset,
                       "workers": args.mirroring_concurrent_service_endpoint_syncs}}
        mgr = build_manager(client, controllers, root_ca=root_ca, signing=signing, options=options,
                            credentials=credentials)
        tuner = tune_gc(mgr)
        try:
            return await ctx.run_leading(client, mgr.start)
        finally:
            tuner.cancel()
            await asyncio.gather(tuner, return_exceptions=True)
    finally:
        if credentials is not None:
            await credentials.close()
        await client.close()


# CPython's default is (700, 10, 10); the apiserver and the scheduler use the same
GC_THRESHOLDS = (20000, 20, 20)


def tune_gc(mgr: Manager) -> asyncio.Future:
    """Process-wide (this process only runs the controller-manager): fewer young collections,
    and once the informer caches have synced, everything then alive frozen out of the cyclic
    collector. Without it the full collections that the allocations of each sync trigger
    rescan every cached object (30,000 pods: a large share of the HPA controller's CPU, seen
    as JSON decoding in profiles). Frozen objects are still freed by reference counting."""
    gc.set_threshold(*GC_THRESHOLDS)

    async def freeze() -> None:
        await mgr.caches_synced.wait()
        gc.collect()
        gc.freeze()
        log.info("garbage collector tuned", frozen=gc.get_freeze_count(), thresholds=gc.get_threshold())

    return asyncio.ensure_future(freeze())


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("controller-manager", help="run the workload controllers")
    p.add_argument("--kubeconfig", help="kubeconfig of the apiserver")
    p.add_argument("--master", help="apiserver URL (instead of --kubeconfig)")
    p.add_argument("--controllers", default="*", help="comma list; '*' all, '-name' to disable")
    p.add_argument("--max-connections", type=int, default=128, help="concurrent HTTP connections to the apiserver")
    p.add_argument("--horizontal-pod-autoscaler-sync-period", type=_duration, default=15.0,
                   help="period of the HorizontalPodAutoscaler's syncs (default 15s)")
    p.add_argument("--horizontal-pod-autoscaler-downscale-stabilization", type=_duration, default=300.0,
                   help="window of the highest recommendation a scale-down respects (default 5m)")
    p.add_argument("--horizontal-pod-autoscaler-tolerance", type=float, default=0.1,
                   help="usage ratio within which the HPA does not scale (default 0.1)")
    p.add_argument("--concurrent-horizontal-pod-autoscaler-syncs", type=int, default=5)
    p.add_argument("--job-pod-failure-backoff", type=_duration, default=10.0,
                   help="the Job controller's delay before replacing a failed pod, doubled per further failure "
                        "(default 10s, kube-controller-manager's DefaultJobPodFailureBackOff)")
    p.add_argument("--job-pod-failure-backoff-max", type=_duration, default=360.0,
                   help="the cap of that delay (default 6m)")
    p.add_argument("--mirroring-max-endpoints-per-subset", type=_int_in(1, 1000), default=1000,
                   help="the most addresses of one Endpoints subset mirrored into EndpointSlices (1-1000, "
                        "default 1000, as kube-controller-manager)")
    p.add_argument("--mirroring-concurrent-service-endpoint-syncs", type=_int_in(1, 50), default=5,
                   help="Endpoints the EndpointSliceMirroring controller syncs at once (1-50, default 5)")
    p.add_argument("--use-service-account-credentials", action="store_true",
                   help="each controller writes as its own ServiceAccount in kube-system (a TokenRequest token, "
                        "refreshed before it expires), authorized by the ClusterRole system:controller:<name>")
    p.add_argument("--cluster-cidr", default="10.42.0.0/16", help="pod CIDR the node IPAM controller splits per node")
    p.add_argument("--node-cidr-mask-size", type=int, default=24)
    p.add_argument("--root-ca-file", default=None, help="cluster CA published as kube-root-ca.crt in every namespace")
    p.add_argument("--cluster-signing-cert-file", default=None, help="CA certificate csrsigning signs with")
    p.add_argument("--cluster-signing-key-file", default=None, help="its private key")
    bootstrap.add_flags(p, COMPONENT)
    p.set_defaults(func=lambda a: bootstrap.run(COMPONENT, a, _main))
