"""``controlplane apiserver --port P --etcd-endpoints URL,... [--workers N]``: the apiserver
alone, in the foreground, until SIGINT/SIGTERM. ``controlplane up`` runs this as a child process.

With ``--workers N`` (N > 1) this process is a small supervisor of N apiserver worker processes
sharing the port (``controlplane.apiserver.server.workers``); the hidden ``--worker i,N,FD`` flag is how it
restarts a worker that died. Worker 0 alone runs the etcd compaction loop and the CRD start-up
reconciliation writes. The first workers are forked from the supervisor once it imported the
worker's code (``run_supervisor``, as gunicorn's ``--preload``): a (re)started apiserver
imports the API server once instead of once per worker (docs/reliability.md, "apiserver restart").

Security flags (kube-apiserver's names; docs/security.md): ``--tls-cert-file``/
``--tls-private-key-file`` (HTTPS), ``--client-ca-file`` (client certificates),
``--token-auth-file``, ``--service-account-key-file`` (repeatable),
``--service-account-signing-key-file``, ``--service-account-issuer``, ``--api-audiences``,
``--anonymous-auth``, ``--authorization-mode`` (default AlwaysAllow, as kube-apiserver;
``controlplane up`` runs Node,RBAC), ``--audit-policy-file``/``--audit-log-path``/
``--audit-log-maxsize``/``--audit-log-maxbackup``/``--audit-log-maxage``,
``--encryption-provider-config`` (with ``--encryption-provider-config-automatic-reload``: every
worker polls the file each ``--encryption-provider-config-reload-interval``, ours, default 1m as
Kubernetes polls; ``encryption/reload.py``), ``--etcd-cafile``/``--etcd-certfile``/``--etcd-keyfile``,
``--kubelet-client-certificate``/``--kubelet-client-key``/``--kubelet-certificate-authority``,
``--enable-admission-plugins``/``--disable-admission-plugins`` (all plugins are on by default;
docs/security.md, "Admission").

The process (each worker) tunes its garbage collector as the scheduler does (``tune_gc``):
young collections run less often and what start-up built (modules, schemas, the registry,
the synced watch caches) is frozen out of the cyclic collector, so full collections no
longer rescan it; reference counting still frees everything as before. Measured: CPython's
defaults spent ~10 % of a worker's CPU in the collector under ``bench scheduling``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
from typing import TYPE_CHECKING

from controlplane.apiserver.server.limits import parse_duration
from controlplane.cmd import bootstrap
from controlplane.log import get_logger
from controlplane.network import addressing

if TYPE_CHECKING:
    from controlplane.apiserver.server.app import ApiServer
    from controlplane.apiserver.server.security import SecurityOptions

log = get_logger(__name__)

# metrics are served at /metrics on the apiserver's own port (as kube-apiserver does)
COMPONENT = bootstrap.Component("apiserver", metrics_port=False)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("apiserver", help="run the Kubernetes-compatible API server")
    p.add_argument("--port", type=int, default=6443)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--etcd-endpoints", required=True, help="comma-separated etcd client URLs")
    p.add_argument("--service-cidr", "--service-cluster-ip-range", dest="service_cidr",
                   default=addressing.DEFAULT_SERVICE_CIDR, help="the range Service cluster IPs come from")
    p.add_argument("--advertise-address", default=None,
                   help="where pods reach the apiserver (the kubernetes Service's endpoint; default: the "
                        "host address of the default cluster CIDR, 10.42.255.254)")
    p.add_argument("--compaction-interval", type=float, default=300.0,
                   help="seconds between etcd compactions (0: never)")
    p.add_argument("--event-ttl", type=int, default=3600,
                   help="seconds an Event is kept after its last write (kube-apiserver's --event-ttl; 0: forever)")
    p.add_argument("--decision-ttl", type=int, default=3600,
                   help="seconds a SchedulingDecision record is kept (0: forever)")
    p.add_argument("--workers", type=int, default=1,
                   help="apiserver processes sharing the port (SO_REUSEPORT); >1 adds a supervisor")
    p.add_argument("--worker", default="", help=argparse.SUPPRESS)  # internal: "index,count,link-fd"
    p.add_argument("--max-requests-inflight", type=int, default=400,
                   help="read-only requests in flight at once, shared out between the workers (0: no limit)")
    p.add_argument("--max-mutating-requests-inflight", type=int, default=200,
                   help="mutating requests in flight at once, shared out between the workers (0: no limit)")
    p.add_argument("--request-timeout", type=parse_duration, default=60.0,
                   help="deadline of non-long-running requests, a duration such as 1m0s (as kube-apiserver)")
    add_security_flags(p)
    bootstrap.add_flags(p, COMPONENT)
    p.set_defaults(func=run)


def add_security_flags(p: argparse.ArgumentParser) -> None:
    a = p.add_argument
    a("--tls-cert-file", default=None, help="serving certificate (HTTPS); without it plain HTTP")
    a("--tls-private-key-file", default=None)
    a("--client-ca-file", default=None, help="CA of client certificates (users: CN = name, O = groups)")
    a("--token-auth-file", default=None, help="static bearer tokens: CSV token,user,uid,\"group1,group2\"")
    a("--service-account-key-file", action="append", default=[], help="public key(s) verifying ServiceAccount tokens")
    a("--service-account-signing-key-file", default=None, help="private key signing ServiceAccount tokens")
    a("--service-account-issuer", default=None,
      help="the iss of issued tokens (default https://kubernetes.default.svc.cluster.local)")
    a("--api-audiences", default="", help="comma list (default: the issuer)")
    a("--anonymous-auth", type=_bool, default=True, help="true/false: requests without credentials are system:anonymous")
    a("--authorization-mode", default="AlwaysAllow", help="comma list of Node, RBAC, AlwaysAllow")
    a("--audit-policy-file", default=None)
    a("--audit-log-path", default=None)
    a("--audit-log-maxsize", type=float, default=100, help="MB before the audit log is rotated")
    a("--audit-log-maxbackup", type=int, default=10)
    a("--audit-log-maxage", type=float, default=0, help="days rotated audit logs are kept (0: no limit)")
    a("--encryption-provider-config", default=None, help="EncryptionConfiguration (encryption at rest)")
    a("--encryption-provider-config-automatic-reload", nargs="?", const=True, default=False, type=_bool,
      help="re-read --encryption-provider-config when it changes (a bad file keeps the old configuration)")
    a("--encryption-provider-config-reload-interval", type=parse_duration, default=60.0,
      help="how often the file is checked with automatic reload, a duration (Kubernetes: 1m)")
    a("--component-status", action="append", default=[], metavar="NAME=URL|NAME=PORT-FILE",
      help="a component `kubectl get componentstatuses` probes (its /healthz URL, or a file holding its "
           "port on 127.0.0.1); repeatable. The etcd servers are always listed")
    a("--etcd-cafile", default=None)
    a("--etcd-certfile", default=None)
    a("--etcd-keyfile", default=None)
    a("--kubelet-client-certificate", default=None, help="the apiserver's client certificate for agents")
    a("--kubelet-client-key", default=None)
    a("--proxy-client-cert-file", default=None,
      help="client certificate the aggregation layer presents to aggregated API servers (front proxy)")
    a("--proxy-client-key-file", default=None)
    a("--kubelet-certificate-authority", default=None, help="CA verifying agents' serving certificates")
    a("--advertise-url", default="", help="the URL published in kube-public/cluster-info (default https://host:port)")
    a("--enable-admission-plugins", default="", help="comma list of admission plugins to enable (all are by default)")
    a("--disable-admission-plugins", default="", help="comma list of admission plugins to turn off")


def _bool(v: str) -> bool:
    if v.lower() in ("true", "1", "yes"):
        return True
    if v.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"want true or false, got {v!r}")


def security_options(args: argparse.Namespace) -> SecurityOptions:
    from controlplane.apiserver.authentication.serviceaccount import DEFAULT_ISSUER
    from controlplane.apiserver.server.security import SecurityOptions
    scheme = "https" if args.tls_cert_file else "http"
    return SecurityOptions(
        tls_cert_file=args.tls_cert_file, tls_private_key_file=args.tls_private_key_file,
        client_ca_file=args.client_ca_file, token_auth_file=args.token_auth_file,
        service_account_key_files=list(args.service_account_key_file),
        service_account_signing_key_file=args.service_account_signing_key_file,
        service_account_issuer=args.service_account_issuer or DEFAULT_ISSUER,
        api_audiences=[a for a in args.api_audiences.split(",") if a],
        anonymous_auth=args.anonymous_auth,
        authorization_mode=[m.strip() for m in args.authorization_mode.split(",") if m.strip()],
        audit_policy_file=args.audit_policy_file, audit_log_path=args.audit_log_path,
        audit_log_maxsize=args.audit_log_maxsize, audit_log_maxbackup=args.audit_log_maxbackup,
        audit_log_maxage=args.audit_log_maxage, encryption_provider_config=args.encryption_provider_config,
        kubelet_client_certificate=args.kubelet_client_certificate, kubelet_client_key=args.kubelet_client_key,
        kubelet_certificate_authority=args.kubelet_certificate_authority,
        proxy_client_cert_file=args.proxy_client_cert_file, proxy_client_key_file=args.proxy_client_key_file,
        advertise_url=args.advertise_url or f"{scheme}://{args.host}:{args.port}")


def build_api(args: argparse.Namespace, *, primary: bool = True, compaction: float | None = None,
              workers: int = 1) -> ApiServer:
    from controlplane.apiserver.persistence.encryption.backend import EncryptingBackend
    from controlplane.apiserver.persistence.encryption.config import EncryptionConfig
    from controlplane.apiserver.persistence.encryption.reload import ConfigReloader
    from controlplane.apiserver.server.app import ApiServer
    from controlplane.apiserver.server.componentstatus import ComponentStatuses
    from controlplane.apiserver.server.limits import RequestLimits
    from controlplane.apiserver.server.security import Security
    from controlplane.storage.etcd import EtcdBackend
    from controlplane.storage.interface import Backend
    backend: Backend = EtcdBackend(args.etcd_endpoints, cafile=args.etcd_cafile, certfile=args.etcd_certfile,
                                   keyfile=args.etcd_keyfile)
    stale, reloader = None, None
    if args.encryption_provider_config:
        with open(args.encryption_provider_config, "rb") as f:
            content = f.read()
        auto = bool(args.encryption_provider_config_automatic_reload)
        enc = EncryptingBackend(backend, EncryptionConfig.parse_bytes(content), dynamic=auto)
        backend, stale = enc, enc.is_stale
        if auto:
            reloader = ConfigReloader(args.encryption_provider_config, enc, content,
                                      interval=args.encryption_provider_config_reload_interval)
    return ApiServer(backend, service_cidr=args.service_cidr,
                     compaction_interval=args.compaction_interval if compaction is None else compaction,
                     primary=primary, security=Security(security_options(args)), stale=stale,
                     encryption_reloader=reloader,
                     advertise_address=args.advertise_address, event_ttl=args.event_ttl, decision_ttl=args.decision_ttl,
                     limits=RequestLimits(args.max_requests_inflight, args.max_mutating_requests_inflight,
                                          args.request_timeout, workers),
                     admission_enabled=_names(args.enable_admission_plugins),
                     admission_disabled=_names(args.disable_admission_plugins),
                     component_statuses=ComponentStatuses.build(
                         args.component_status, [e for e in args.etcd_endpoints.split(",") if e.strip()],
                         args.etcd_cafile, args.etcd_certfile, args.etcd_keyfile))


def _names(csv: str) -> list[str]:
    return [n.strip() for n in (csv or "").split(",") if n.strip()]


# CPython's default is (700, 10, 10); the scheduler uses the same (controlplane/cmd/scheduler.py)
GC_THRESHOLDS = (20000, 20, 20)
GC_FREEZE_AFTER_S = 5.0


def tune_gc() -> asyncio.Future:
    """Process-wide (only for a process of its own, never an in-process server): fewer young
    collections, and what exists a few seconds into serving (start-up state, the initial
    watch-cache lists) frozen out of the cyclic collector. Returns the freezing task."""
    gc.set_threshold(*GC_THRESHOLDS)

    async def freeze() -> None:
        await asyncio.sleep(GC_FREEZE_AFTER_S)
        gc.collect()
        gc.freeze()
        log.info("garbage collector tuned", frozen=gc.get_freeze_count(), thresholds=gc.get_threshold())

    return asyncio.ensure_future(freeze())


async def main(ctx: bootstrap.Context) -> None:
    from controlplane.apiserver.server.app import serve
    args = ctx.args
    api = build_api(args)
    tuner = tune_gc()
    try:
        await serve(api, args.host, args.port, ctx.stop)
    finally:
        tuner.cancel()



async def worker_main(ctx: bootstrap.Context) -> None:
    """One worker of a supervised apiserver: today's ``serve`` on a SO_REUSEPORT socket, ready
    only when the supervisor says every worker is."""
    import structlog

    from controlplane.apiserver.server.app import serve
    from controlplane.apiserver.server.metrics import WORKER_RESTARTS
    from controlplane.apiserver.server.workers import RESTART_CAUSE_ENV, WorkerLink, parse_worker_spec, reuse_port_socket
    args = ctx.args
    index, count, fd = parse_worker_spec(args.worker)
    structlog.contextvars.bind_contextvars(worker=index)
    if os.environ.get(RESTART_CAUSE_ENV):
        WORKER_RESTARTS.labels("apiserver-worker", os.environ[RESTART_CAUSE_ENV]).inc()
    link = WorkerLink(fd)
    await link.open()
    watcher = asyncio.ensure_future(link.run(ctx.stop))
    tuner = tune_gc()
    try:
        primary = index == 0
        api = build_api(args, primary=primary, compaction=None if primary else 0.0, workers=count)
        sock = reuse_port_socket(args.host, args.port)
        await serve(api, args.host, args.port, ctx.stop, sock=sock, gate=link.ready_gate, workers=count)
    finally:
        tuner.cancel()
        watcher.cancel()
        link.close()


def preload() -> None:
    """Import what a worker runs (``worker_main``, ``build_api`` and the server), so that
    forked workers start with it imported."""
    import structlog  # noqa: F401

    import controlplane.apiserver.authentication.serviceaccount  # noqa: F401
    import controlplane.apiserver.persistence.encryption.backend  # noqa: F401
    import controlplane.apiserver.persistence.encryption.config  # noqa: F401
    import controlplane.apiserver.persistence.encryption.reload  # noqa: F401
    import controlplane.apiserver.server.app  # noqa: F401
    import controlplane.apiserver.server.limits  # noqa: F401
    import controlplane.apiserver.server.metrics  # noqa: F401
    import controlplane.apiserver.server.security  # noqa: F401
    import controlplane.storage.etcd  # noqa: F401


def _forked_worker(args: argparse.Namespace, index: int, count: int, fd: int) -> int:
    """A preforked worker's whole life (``workers.prefork`` calls it in the child)."""
    wargs = argparse.Namespace(**vars(args))
    wargs.worker, wargs.workers = f"{index},{count},{fd}", 1
    return bootstrap.run(COMPONENT, wargs, worker_main)


def run_supervisor(args: argparse.Namespace) -> int:
    """The supervisor, preloaded (as gunicorn's ``--preload``): the multiprocess metrics
    directory is set, the worker's code imported once, and the first workers forked, all before
    the supervisor's event loop (or any thread or socket but the links) exists; then the loop
    supervises them. A worker that dies later is restarted as a new process (``--worker``)."""
    import functools

    from controlplane.apiserver.server.workers import (metrics_dir_for_workers, prefork, supervise,
                                                       worker_argv)
    metrics_dir = metrics_dir_for_workers()
    preload()
    gc.freeze()  # the imported modules stay out of the collector: fewer copied pages in the workers
    preforked = prefork(args.workers, functools.partial(_forked_worker, args))

    async def supervisor_main(ctx: bootstrap.Context) -> int:
        # the supervisor installs its own SIGINT/SIGTERM handlers and forwards them to the workers
        return await supervise(worker_argv(sys.argv[1:]), ctx.args.workers, preforked=preforked,
                               metrics_dir=metrics_dir)

    return bootstrap.run(COMPONENT, args, supervisor_main)


def run(args: argparse.Namespace) -> int:
    if args.worker:
        return bootstrap.run(COMPONENT, args, worker_main)
    if args.workers > 1:
        if args.port == 0:
            bootstrap.setup_logging(COMPONENT, args)
            log.error("--workers needs a fixed --port (each worker binds it with SO_REUSEPORT)")
            return 2
        return run_supervisor(args)
    return bootstrap.run(COMPONENT, args, main)
