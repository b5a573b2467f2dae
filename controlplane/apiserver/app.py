"""The apiserver process: a Sanic app over one storage Backend, with a watch cache per resource.

``ApiServer`` holds the shared state (backend, registry, object store, watch caches, CRD
controller, service IP allocator) and the hooks the write handlers call; ``routes.build_app``
wires the HTTP routes to the handlers; ``serve`` runs it in the current event loop until stopped.
Request flow: route -> ``handlers_common.resolve`` -> verb handler -> ``handlers_mutate`` rules
-> ``store.ObjectStore`` -> ``storage`` backend; reads and watches are served by ``watchcache``.
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any, Awaitable, Callable

from controlplane.apiserver import errors, handlers_delete, handlers_write, metrics
from controlplane.apiserver.crds import CrdController
from controlplane.apiserver.registry import Registry, ResourceInfo
from controlplane.apiserver.services import ServiceIPAllocator
from controlplane.apiserver.store import ObjectStore
from controlplane.apiserver.watchcache import WatchCache
from controlplane.log import get_logger
from controlplane.storage import interface as keys
from controlplane.storage.interface import Backend, StorageError

log = get_logger(__name__)

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


class ApiServer:
    """Shared state of one apiserver and the cross-cutting hooks of writes."""

    def __init__(self, backend: Backend, *, service_cidr: str = "10.96.0.0/12",
                 compaction_interval: float = 300.0, primary: bool = True) -> None:
        self.backend = backend
        self.compaction_interval = compaction_interval
        self.primary = primary  # the one process (of several workers) doing once-only jobs
        self.stopping = asyncio.Event()
        self.watchers: set[Any] = set()  # open watch streams (closed on shutdown)
        self.registry = Registry.with_builtins()
        self.store = ObjectStore(backend)
        self.caches: dict[str, WatchCache] = {}  # by storage prefix
        self.crds = CrdController(self)
        self.services = ServiceIPAllocator(backend, service_cidr)
        self.ready = False
        self._tasks: set[asyncio.Task[Any]] = set()
        metrics.on_scrape(self._count_objects)

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        await self.backend.start()
        # the strategic-merge/apply metadata (~0.5 s to load) is read once, off the event loop
        from controlplane.apiserver.patch.schema import preload

        await asyncio.to_thread(preload)
        for info in self.registry.all():
            await self.cache_for(info)
        await self._ensure_namespaces()
        await self.crds.start()
        if self.compaction_interval > 0:
            self.spawn(self._compact_loop())
        self.ready = True
        log.info("apiserver storage ready", resources=len(self.registry.all()))

    async def stop(self) -> None:
        self.ready = False
        self.stopping.set()
        await self.crds.stop()
        for task in list(self._tasks):
            task.cancel()
        for cache in list(self.caches.values()):
            await cache.stop()
        self.caches.clear()
        await self.store.close()  # queued group-commit writes end (their requests are gone)
        await self.backend.close()

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def cache_for(self, info: ResourceInfo) -> WatchCache:
        prefix = keys.resource_prefix(info.key_group, info.plural)
        cache = self.caches.get(prefix)
        if cache is None:
            cache = WatchCache(self.backend, prefix, info.plural)
            self.caches[prefix] = cache
            await cache.start()
        return cache

    def cache_if_ready(self, info: ResourceInfo) -> WatchCache | None:
        cache = self.caches.get(keys.resource_prefix(info.key_group, info.plural))
        return cache if cache is not None and cache.ready else None

    async def _compact_loop(self) -> None:
        """Compact etcd every ``compaction_interval`` seconds to the revision seen one interval
        earlier (as kube-apiserver does), so watchers get at least one interval of history."""
        previous = 0
        while True:
            await asyncio.sleep(self.compaction_interval)
            try:
                current = await self.backend.current_revision()
                if previous:
                    await self.backend.compact(previous)
                    log.info("compacted", revision=previous)
                previous = current
            except StorageError as e:
                log.warning("compaction failed", error=str(e))

    async def drop_cache(self, info: ResourceInfo) -> None:
        cache = self.caches.pop(keys.resource_prefix(info.key_group, info.plural), None)
        if cache is not None:
            await cache.stop()

    async def _ensure_namespaces(self) -> None:
        ns_info = self.registry.get("", "v1", "namespaces")
        assert ns_info is not None
        for name in SYSTEM_NAMESPACES:
            if await self.store.get_or_none(ns_info, None, name) is None:
                obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
                try:
                    await handlers_write.create_object(self, ns_info, obj, strict=False,
                                                       manager="controlplane-apiserver", dry=False)
                except errors.ApiError as e:
                    if e.reason != "AlreadyExists":
                        raise

    def _count_objects(self) -> None:
        for info in self.registry.all():
            cache = self.caches.get(keys.resource_prefix(info.key_group, info.plural))
            if cache is not None:
                metrics.STORAGE_OBJECTS.labels(info.group_resource).set(len(cache))

    # -- hooks used by the handlers --------------------------------------------------------
    def output(self, info: ResourceInfo, obj: dict[str, Any]) -> dict[str, Any]:
        """An object as served at ``info``'s version (custom resources may be stored at another)."""
        if info.is_custom and obj.get("apiVersion") != info.api_version:
            obj["apiVersion"] = info.api_version
        return obj

    async def require_namespace(self, namespace: str | None, *, creating: bool = False) -> None:
        if not namespace:
            raise errors.bad_request("a namespace is required for namespaced resources")
        ns_info = self.registry.get("", "v1", "namespaces")
        assert ns_info is not None
        cache = self.cache_if_ready(ns_info)
        entry = cache.get(keys.object_key("core", "namespaces", None, namespace)) if cache is not None else None
        if entry is not None and (not creating or b'"deletionTimestamp"' not in entry.raw):
            return  # the cache knows it (a namespace just created may not be there yet: ask etcd)
        ns = await self.store.get_or_none(ns_info, None, namespace)
        if ns is None:
            raise errors.not_found("namespaces", namespace)
        if creating and ns["metadata"].get("deletionTimestamp"):
            raise errors.ApiError(403, "Forbidden",
                                  f"unable to create new content in namespace {namespace} because it is being terminated",
                                  details={"name": namespace, "kind": "namespaces"})

    async def hooks_before_create(self, info: ResourceInfo, obj: dict[str, Any], *, dry: bool) -> None:
        if info.group == "" and info.plural == "services":
            await self.services.allocate(obj, dry=dry)
        elif info.group == "apiextensions.k8s.io" and info.plural == "customresourcedefinitions":
            self.crds.validate(obj)
            self.crds.prepare_create(obj)

    async def hooks_create_failed(self, info: ResourceInfo, obj: dict[str, Any]) -> None:
        if info.group == "" and info.plural == "services":
            await self.services.release(obj)

    async def hooks_before_update(self, info: ResourceInfo, old: dict[str, Any], new: dict[str, Any],
                                  *, dry: bool) -> None:
        if info.group == "" and info.plural == "services":
            self.services.keep_immutable(old, new)
        elif info.group == "apiextensions.k8s.io" and info.plural == "customresourcedefinitions":
            self.crds.validate(new)

    async def after_write(self, info: ResourceInfo, obj: dict[str, Any]) -> None:
        """Called after every successful create/update (not on dry runs)."""
        if info.group == "apiextensions.k8s.io" and info.plural == "customresourcedefinitions":
            await self.crds.sync(obj)

    async def finish_delete(self, info: ResourceInfo, obj: dict[str, Any]) -> dict[str, Any]:
        """Remove an object from storage for good (no finalizers left)."""
        rv = int(obj["metadata"].get("resourceVersion") or 0)
        out = await self.store.delete(info, obj, rv)
        if info.group == "" and info.plural == "services":
            await self.services.release(out)
        elif info.group == "apiextensions.k8s.io" and info.plural == "customresourcedefinitions":
            await self.crds.forget(out)
        return out

    async def delete_object(self, info: ResourceInfo, obj: dict[str, Any], *, grace: int | None = None,
                            propagation: str | None = None) -> tuple[dict[str, Any], bool]:
        meta = obj["metadata"]
        return await handlers_delete.delete_object(self, info, meta.get("namespace"), meta["name"],
                                                   grace=grace, propagation=propagation)


async def serve(api: ApiServer, host: str, port: int, stop: asyncio.Event, *, sock: socket.socket | None = None,
                gate: Callable[[], Awaitable[None]] | None = None, workers: int = 1) -> None:
    """Run the HTTP server in the current loop until ``stop`` is set.

    As one of several workers (``workers.py``): listen on ``sock`` (SO_REUSEPORT), resolve
    unknown custom resources through the CRD watch cache first (another worker may have
    handled the CRD write), and only turn ready once ``gate`` returns (every worker serves)."""
    from controlplane.apiserver.routes import build_app, skip_unused_signals

    app = build_app(api)
    if workers > 1:  # only on the routes that can address custom resources (core: no cost)
        names = [r.name for r in app.router.routes if r.path.startswith(("apis", "openapi"))]
        app.register_named_middleware(_crd_catch_up(api), route_names=names, attach_to="request")
    await api.start()
    if gate is not None:
        api.ready = False  # /readyz: 503 until every worker serves
    listen: dict[str, Any] = {"sock": sock} if sock is not None else {"host": host, "port": port}
    server = await app.create_server(**listen, return_asyncio_server=True, access_log=False)
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
                api.ready = True
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
            if len(parts) > 4 and parts[4]:
                rest = parts[4:]
                plural = rest[2] if rest[0] == "namespaces" and len(rest) > 2 else rest[0]
                if registry.get(parts[2], parts[3], plural) is not None:
                    return
            await api.crds.catch_up()
        elif path.startswith("/openapi"):
            await api.crds.catch_up()

    return catch_up
