"""The apiserver process: a Sanic app over one storage Backend, with a watch cache per resource.

``ApiServer`` holds the state of one process (backend, resource registry with each resource's
strategy, object store, watch caches, CRD controller, Service IP allocator) and its lifecycle;
it is what the endpoints work on (``endpoints.common.Api``) and what the strategies' hooks use
(``strategy.base.StrategyContext``). ``routes.build_app`` wires the HTTP routes to the
endpoints; ``serve`` runs it in the current event loop until stopped.
Request flow (docs/architecture.md): ``routes.dispatch`` -> ``endpoints`` -> ``strategy`` ->
``validation`` -> ``persistence`` -> ``controlplane.storage.interface``.
"""

from __future__ import annotations

import asyncio
import copy
import socket
import time
from typing import Any, Awaitable, Callable

from controlplane.apiserver.admission import AdmissionChain
from controlplane.apiserver.admission.priority import SYSTEM_CLASSES
from controlplane.apiserver.aggregation.aggregator import Aggregator
from controlplane.apiserver.endpoints.write import create_object, write_update
from controlplane.apiserver.meta import errors
from controlplane.apiserver.patch.schema import preload as preload_patch_schemas
from controlplane.apiserver.persistence.caches import WatchCaches
from controlplane.apiserver.persistence.compactor import Compactor
from controlplane.apiserver.persistence.encryption.reload import ConfigReloader
from controlplane.apiserver.persistence.store import ObjectStore
from controlplane.apiserver.server import metrics
from controlplane.apiserver.server import kubernetes_service
from controlplane.apiserver.server.crds import CrdController
from controlplane.apiserver.server.endpoint_reconciler import EndpointReconciler, address_of
from controlplane.apiserver.server.componentstatus import ComponentStatuses
from controlplane.apiserver.server.health import EtcdProbe, build_checks
from controlplane.apiserver.server.limits import RequestLimits
from controlplane.apiserver.server.routes import build_app, skip_unused_signals
from controlplane.apiserver.server.security import Security, SecurityOptions
from controlplane.apiserver.strategy.builtins import builtin_registry
from controlplane.apiserver.strategy.serviceips import ServiceIPAllocator
from controlplane.log import get_logger
from controlplane.machinery.timestamps import now_rfc3339
from controlplane.network.addressing import DEFAULT_SERVICE_CIDR, ClusterNetworks
from controlplane.storage.interface import Backend

log = get_logger(__name__)

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


class ApiServer:
    """The state of one apiserver process and its lifecycle."""

    def __init__(self, backend: Backend, *, service_cidr: str = DEFAULT_SERVICE_CIDR,
                 compaction_interval: float = 300.0, primary: bool = True, security: Security | None = None,
                 stale: Callable[[str], bool] | None = None, advertise_address: str | None = None,
                 event_ttl: int | None = None, decision_ttl: int | None = None,
                 limits: RequestLimits | None = None, admission_enabled: list[str] | None = None,
                 admission_disabled: list[str] | None = None,
                 component_statuses: ComponentStatuses | None = None,
                 encryption_reloader: ConfigReloader | None = None) -> None:
        """``security``: TLS, authentication, authorization and audit (default: none of them,
        every request allowed, as kube-apiserver with AlwaysAllow and no TLS); ``stale``: the
        encryption-at-rest backend's check for values written with an old key;
        ``advertise_address``: where pods reach this apiserver (the ``kubernetes`` Service's
        endpoint; default: the cluster's host address, docs/networking.md); ``event_ttl`` /
        ``decision_ttl``: seconds Events / SchedulingDecisions live (None: 1 h; 0: forever);
        ``admission_enabled``/``_disabled``: the admission plugins (default: all of them);
        ``component_statuses``: what ``kubectl get componentstatuses`` probes (default: nothing);
        ``encryption_reloader``: polls the EncryptionConfiguration file (automatic reload)."""
        self.backend = backend
        self.security = security or Security(SecurityOptions(authorization_mode=["AlwaysAllow"]))
        self.service_cidr = service_cidr
        self.advertise_address = advertise_address or str(ClusterNetworks.parse().host_address)
        self.port = 0  # the serving port (set by ``serve``), published in the kubernetes Service
        self.primary = primary  # the one process (of several workers) doing once-only jobs
        self.stopping = asyncio.Event()
        self.watchers: set[Any] = set()  # open watch streams (closed on shutdown)
        self.registry = builtin_registry(event_ttl, decision_ttl)
        self.store = ObjectStore(backend, stale=stale)
        self.kubelet_ssl = self.security.kubelet_ssl
        self.caches = WatchCaches(backend)
        self.crds = CrdController(self)
        self.service_ips = ServiceIPAllocator(backend, service_cidr)
        self.compactor = Compactor(backend, compaction_interval) if compaction_interval > 0 else None
        o = self.security.opts
        self.aggregator = Aggregator(self.caches, self.registry,
                                     (o.proxy_client_cert_file, o.proxy_client_key_file)
                                     if o.proxy_client_cert_file and o.proxy_client_key_file else None)
        self.admission = AdmissionChain(self, enabled=admission_enabled, disabled=admission_disabled or ())
        self.ready = False  # storage started: every watch cache listed, CRDs established
        self.workers_ready = True  # with several workers: every worker serves (the gate passed)
        self.etcd_probe = EtcdProbe(backend)
        self.health = build_checks(self, self.etcd_probe)
        self.limits = limits or RequestLimits()
        self.component_statuses = component_statuses or ComponentStatuses()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.encryption_reloader = encryption_reloader
        # default/kubernetes Endpoints list every apiserver (the primary worker of each keeps its lease)
        addr = address_of(self.security.opts.advertise_url) if primary else None
        self.endpoint_reconciler = EndpointReconciler(self, addr) if addr is not None else None
        metrics.on_scrape(self._count_objects)

    # -- lifecycle -------------------------------------------------------------------------
    def caches_synced(self) -> bool:
        return self.ready

    async def start(self) -> None:
        await self.backend.start()
        self.spawn(self.etcd_probe.run(self.stopping))
        if self.encryption_reloader is not None:
            self.spawn(self.encryption_reloader.run(self.stopping))
        # the strategic-merge/apply metadata (~0.5 s to load) is read once, off the event loop
        await asyncio.to_thread(preload_patch_schemas)
        for info in self.registry.all():
            if "watch" in info.verbs:  # (the review APIs and ComponentStatus are never stored)
                await self.caches.cache_for(info)
        await self.admission.start()
        await self._ensure_namespaces()
        await self.security.start(self)
        if self.primary:
            await self._ensure_priority_classes()
            self.spawn(self.service_ips.repair_loop(self.stopping))
            if self.port:
                await kubernetes_service.ensure(self, self.advertise_address, self.port)
        await self.crds.start()
        if self.compactor is not None:
            self.compactor.launch()
        if self.primary:
            self.aggregator.start_controller(self._write_apiservice_status)
        if self.endpoint_reconciler is not None:
            self.spawn(self.endpoint_reconciler.run(self.stopping))
        self.ready = True
        log.info("apiserver storage ready", resources=len(self.registry.all()))

    async def stop(self) -> None:
        self.ready = False
        self.stopping.set()
        if self.endpoint_reconciler is not None:
            try:  # leave the list at once (a killed apiserver leaves it when its lease expires)
                await asyncio.wait_for(self.endpoint_reconciler.remove(), 2.0)
            except Exception as e:  # noqa: BLE001 - etcd may be gone already; the lease expires anyway
                log.info("apiserver endpoint not removed", error=str(e))
        await self.crds.stop()
        await self.aggregator.stop()
        if self.compactor is not None:
            await self.compactor.stop()
        for task in list(self._tasks):
            task.cancel()
        await self.security.stop()
        await self.admission.stop()
        await self.caches.stop()
        await self.store.close()  # queued group-commit writes end (their requests are gone)
        await self.backend.close()

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _ensure_namespaces(self) -> None:
        ns_info = self.registry.get("", "v1", "namespaces")
        assert ns_info is not None
        for name in SYSTEM_NAMESPACES:
            if await self.store.get_or_none(ns_info, None, name) is None:
                obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
                try:
                    await create_object(self, ns_info, obj, strict=False, manager="controlplane-apiserver", dry=False)
                except errors.ApiError as e:
                    if e.reason != "AlreadyExists":
                        raise

    async def _write_apiservice_status(self, name: str, cond: tuple[str, str, str]) -> None:
        """The availability controller's ``Available`` condition, through ``/status``."""
        info = self.registry.get("apiregistration.k8s.io", "v1", "apiservices")
        assert info is not None

        async def compute(current: dict[str, Any]) -> dict[str, Any]:
            new = copy.deepcopy(current)
            status = new.get("status") or {}
            old = next((c for c in status.get("conditions") or [] if c.get("type") == "Available"), None)
            keep = old is not None and old.get("status") == cond[0] and old.get("lastTransitionTime")
            conds = [c for c in status.get("conditions") or [] if c.get("type") != "Available"]
            conds.append({"type": "Available", "status": cond[0],
                          "lastTransitionTime": old["lastTransitionTime"] if keep and old else now_rfc3339(),
                          "reason": cond[1], "message": cond[2]})
            new["status"] = {**status, "conditions": conds}
            return new

        try:
            await write_update(self, info, None, name, compute, subresource="status", strict=False,
                               manager="kube-aggregator", dry=False)
        except errors.ApiError as e:
            if e.code != 404:
                raise

    async def _ensure_priority_classes(self) -> None:
        """The system PriorityClasses (kube-apiserver's scheduling post-start hook)."""
        info = self.registry.get("scheduling.k8s.io", "v1", "priorityclasses")
        assert info is not None
        for pc in SYSTEM_CLASSES:
            if await self.store.get_or_none(info, None, pc["metadata"]["name"]) is None:
                try:
                    await create_object(self, info, copy.deepcopy(pc), strict=False, manager="controlplane-apiserver",
                                        dry=False)
                except errors.ApiError as e:
                    if e.reason != "AlreadyExists":
                        raise

    def _count_objects(self) -> None:
        self.caches.count_objects(self.registry.all())


async def serve(api: ApiServer, host: str, port: int, stop: asyncio.Event, *, sock: socket.socket | None = None,
                gate: Callable[[], Awaitable[None]] | None = None, workers: int = 1) -> None:
    """Run the HTTP server in the current loop until ``stop`` is set.

    As one of several workers (``workers.py``): listen on ``sock`` (SO_REUSEPORT), resolve
    unknown custom resources through the CRD watch cache first (another worker may have
    handled the CRD write), and only turn ready once ``gate`` returns (every worker serves)."""
    app = build_app(api)
    if workers > 1:  # only on the routes that can address custom resources (core: no cost)
        names = [r.name for r in app.router.routes if r.path.startswith(("apis", "openapi"))]
        app.register_named_middleware(_crd_catch_up(api), route_names=names, attach_to="request")
    api.port = port
    await api.start()
    if gate is not None:
        api.workers_ready = False  # /readyz: 500 until every worker serves
    listen: dict[str, Any] = {"sock": sock} if sock is not None else {"host": host, "port": port}
    server = await app.create_server(**listen, ssl=api.security.ssl_context(), return_asyncio_server=True,
                                     access_log=False)
    assert server is not None
    await server.startup()
    skip_unused_signals(app)
    await server.before_start()
    await server.after_start()
    log.info("apiserver serving", host=host, port=port)
    try:
        if gate is not None:
            passed = asyncio.ensure_future(gate())
            stopped = asyncio.ensure_future(stop.wait())
            await asyncio.wait({passed, stopped}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            if passed.done():
                passed.result()  # raises when the supervisor went away
                api.workers_ready = True
            else:
                passed.cancel()
        await stop.wait()
    finally:
        started = time.monotonic()
        api.stopping.set()  # open watches end their streams cleanly (clients resume elsewhere)
        for w in list(api.watchers):
            w.close("apiserver shutting down")
        await asyncio.sleep(0.05)
        await server.before_stop()
        server.close()
        await server.wait_closed()
        await server.after_stop()
        await api.stop()
        log.info("apiserver stopped", seconds=round(time.monotonic() - started, 3))


def _crd_catch_up(api: ApiServer) -> Callable[[Any], Awaitable[None]]:
    """Request middleware of a worker: discovery/OpenAPI reads and requests for a resource this
    worker does not know yet first bring its custom resources up to date with etcd (a CRD
    written through another worker reaches this one through its watch cache, a bit later)."""
    registry = api.registry

    async def catch_up(request: Any) -> None:
        path = request.path
        if path.startswith("/apis"):
            parts = path.split("/")  # "", "apis", group, version, rest...
            if len(parts) > 3 and api.aggregator.remote(parts[2], parts[3]) is not None:
                return  # an aggregated API: not ours to resolve
            if len(parts) > 4 and parts[4]:
                rest = parts[4:]
                plural = rest[2] if rest[0] == "namespaces" and len(rest) > 2 else rest[0]
                if registry.get(parts[2], parts[3], plural) is not None:
                    return
            await api.crds.catch_up()
        elif path.startswith("/openapi"):
            await api.crds.catch_up()

    return catch_up
