"""The apiserver process: a Sanic app over one storage Backend, with a watch cache per resource.

``ApiServer`` holds the shared state (backend, registry, object store, watch caches, CRD
controller, service IP allocator) and the hooks the write handlers call; ``build_app`` wires
the HTTP routes to the handlers; ``serve`` runs it in the current event loop until stopped.
Request flow: route -> ``handlers_common.resolve`` -> verb handler -> ``handlers_mutate`` rules
-> ``store.ObjectStore`` -> ``storage`` backend; reads and watches are served by ``watchcache``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sanic import Request, Sanic
from sanic.response import HTTPResponse, raw, text

from controlplane.apiserver import discovery, errors, metrics
from controlplane.apiserver import handlers_common as hc
from controlplane.apiserver import handlers_mutate as hm
from controlplane.apiserver import handlers_delete, handlers_read, handlers_sub, handlers_watch, handlers_write
from controlplane.apiserver.crds import CrdController
from controlplane.apiserver.registry import Registry, ResourceInfo
from controlplane.apiserver.services import ServiceIPAllocator
from controlplane.apiserver.store import ObjectStore, dumps
from controlplane.apiserver.watchcache import WatchCache
from controlplane.log import get_logger
from controlplane.storage import keys
from controlplane.storage.interface import Backend, CompactedError, StorageError

log = get_logger(__name__)

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


class ApiServer:
    """Shared state of one apiserver and the cross-cutting hooks of writes."""

    def __init__(self, backend: Backend, *, service_cidr: str = "10.96.0.0/12",
                 compaction_interval: float = 300.0) -> None:
        self.backend = backend
        self.compaction_interval = compaction_interval
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


# -- HTTP ------------------------------------------------------------------------------------

_VERB_BY_METHOD = {"POST": "create", "PUT": "update", "PATCH": "patch"}


def _verb(request: Request, t: hc.Target) -> str:
    m = request.method
    if m == "GET":
        if t.name:
            return "get"
        return "watch" if hc.bool_arg(request, "watch") else "list"
    if m == "DELETE":
        return "delete" if t.name else "deletecollection"
    return _VERB_BY_METHOD.get(m, m.lower())


async def dispatch(api: ApiServer, request: Request, prefix: str, path: str) -> HTTPResponse | None:
    code = [500]
    verb, labels = request.method.lower(), ("", "", "", "")
    try:
        t = hc.resolve(api.registry, prefix, path)
        verb = _verb(request, t)
        labels = (t.info.group, t.info.version, t.info.plural, t.subresource)
        with metrics.observe(verb, *labels, code):
            try:
                warnings: list[str] = []
                token = hm.WARNINGS.set(warnings)
                try:
                    resp = await _run_verb(api, request, t, verb)
                finally:
                    hm.WARNINGS.reset(token)
                if warnings and resp is not None:
                    resp.headers.extend([("Warning", f'299 - "{_quote(m)}"') for m in warnings[:20]])
                code[0] = resp.status if resp is not None else 200
                return resp
            except errors.ApiError as e:
                code[0] = e.code
                raise
    except errors.ApiError as e:
        if labels[2] == "":
            metrics.REQUESTS.labels(verb, "", "", "", "", str(e.code)).inc()
        return hc.status_response(e)
    except StorageError as e:
        return hc.status_response(_storage_status(e, request))


def _quote(message: str) -> str:
    return message.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


def _storage_status(e: StorageError, request: Request) -> errors.ApiError:
    from controlplane.apiserver.watchcache import TooLargeResourceVersionError
    from controlplane.storage.etcd import FutureRevisionError

    if isinstance(e, (TooLargeResourceVersionError, FutureRevisionError)):
        return errors.ApiError(504, "Timeout", f"Too large resource version: {e}",
                               details={"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
                                        "retryAfterSeconds": 1})
    if isinstance(e, CompactedError):
        return errors.gone(f"too old resource version: {e.requested} ({e.compact_revision})")
    log.warning("storage error", error=str(e), path=request.path)
    return errors.ApiError(503, "ServiceUnavailable", f"storage error: {e}")


async def _run_verb(api: ApiServer, request: Request, t: hc.Target, verb: str) -> HTTPResponse | None:
    if t.subresource and t.subresource not in ("status", "finalize"):
        return await handlers_sub.handle(api, request, t, verb)
    if verb == "get":
        return await handlers_read.get(api, request, t)
    if verb == "list":
        return await handlers_read.list_(api, request, t)
    if verb == "watch":
        return await handlers_watch.watch(api, request, t)
    if verb == "create":
        return await handlers_write.create(api, request, t)
    if verb == "update":
        return await handlers_write.update(api, request, t)
    if verb == "patch":
        return await handlers_write.patch(api, request, t)
    if verb == "delete":
        return await handlers_delete.delete(api, request, t)
    if verb == "deletecollection":
        return await handlers_delete.delete_collection(api, request, t)
    raise errors.method_not_allowed(f"{request.method} is not supported")


def build_app(api: ApiServer, name: str = "controlplane-apiserver") -> Sanic:
    app = Sanic(name, configure_logging=False)
    app.config.REQUEST_MAX_SIZE = 64 * 1024 * 1024  # we answer 413 ourselves above 3 MiB
    app.config.RESPONSE_TIMEOUT = 4 * 3600
    app.config.REQUEST_TIMEOUT = 120
    app.config.KEEP_ALIVE_TIMEOUT = 120
    app.config.NOISY_EXCEPTIONS = False
    app.config.TOUCHUP = False
    app.ctx.api = api
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]

    @app.route("/version", methods=["GET"])
    async def version(_: Request) -> HTTPResponse:
        return hc.json_response(discovery.VERSION_INFO)

    async def health(_: Request) -> HTTPResponse:
        return text("ok") if api.ready else text("not ready", status=503)

    for probe in ("healthz", "livez", "readyz"):
        app.add_route(health, f"/{probe}", methods=["GET"], name=probe)

    @app.route("/metrics", methods=["GET"])
    async def prom(_: Request) -> HTTPResponse:
        body, ctype = metrics.render()
        return raw(body, content_type=ctype)

    @app.route("/api", methods=["GET"])
    async def api_root(_: Request) -> HTTPResponse:
        return hc.json_response(discovery.api_versions())

    @app.route("/apis", methods=["GET"])
    async def apis_root(_: Request) -> HTTPResponse:
        return hc.json_response(discovery.api_group_list(api.registry))

    @app.route("/api/<path:path>", methods=methods)
    async def core(request: Request, path: str) -> HTTPResponse | None:
        parts = [p for p in path.split("/") if p]
        if len(parts) == 1 and request.method == "GET":
            doc = discovery.api_resource_list(api.registry, "", parts[0])
            if doc is None:
                return hc.status_response(errors.ApiError(404, "NotFound", "the server could not find the requested resource"))
            return hc.json_response(doc)
        return await dispatch(api, request, "api", path)

    @app.route("/apis/<path:path>", methods=methods)
    async def groups(request: Request, path: str) -> HTTPResponse | None:
        parts = [p for p in path.split("/") if p]
        if len(parts) <= 2 and request.method == "GET":
            doc = (discovery.api_group(api.registry, parts[0]) if len(parts) == 1
                   else discovery.api_resource_list(api.registry, parts[0], parts[1]))
            if doc is None:
                return hc.status_response(errors.ApiError(404, "NotFound", "the server could not find the requested resource"))
            return hc.json_response(doc)
        return await dispatch(api, request, "apis", path)

    _openapi_routes(app, api)
    from controlplane.apiserver import node_proxy  # pods/log and pods/exec → the node agent

    node_proxy.install(app, api)

    @app.exception(Exception)
    async def on_error(request: Request, exc: Exception) -> HTTPResponse:
        from sanic.exceptions import SanicException

        if isinstance(exc, errors.ApiError):
            return hc.status_response(exc)
        if isinstance(exc, SanicException):
            code = getattr(exc, "status_code", 500) or 500
            reason = {404: "NotFound", 405: "MethodNotAllowed", 413: "RequestEntityTooLarge"}.get(code, "InternalError")
            return hc.status_response(errors.ApiError(code, reason, str(exc) or reason))
        log.exception("unhandled error", path=request.path, method=request.method)
        return hc.status_response(errors.ApiError(500, "InternalError", f"Internal error occurred: {exc}"))

    return app


def _openapi_routes(app: Sanic, api: ApiServer) -> None:
    """``/openapi/v3`` documents from H2c's ``openapi.py`` (and v2 when it offers one)."""
    cache: dict[tuple[int, str], bytes] = {}

    def cached(key: str, build: Any) -> bytes:
        k = (api.registry.generation, key)
        if k not in cache:
            if len(cache) > 256:
                cache.clear()
            cache[k] = dumps(build())
        return cache[k]

    @app.route("/openapi/v3", methods=["GET"])
    async def v3_root(_: Request) -> HTTPResponse:
        from controlplane.apiserver import openapi

        return hc.json_response(cached("root", lambda: openapi.v3_root(api.registry)))

    @app.route("/openapi/v3/<path:path>", methods=["GET"])
    async def v3_gv(_: Request, path: str) -> HTTPResponse:
        from controlplane.apiserver import openapi

        parts = [p for p in path.split("/") if p]
        if parts[:1] == ["api"] and len(parts) == 2:
            group, version = "", parts[1]
        elif parts[:1] == ["apis"] and len(parts) == 3:
            group, version = parts[1], parts[2]
        else:
            return hc.status_response(errors.ApiError(404, "NotFound", "the server could not find the requested resource"))

        def build() -> Any:
            doc = openapi.v3_group_version(api.registry, group, version)
            if doc is None:
                raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")
            return doc

        body = await asyncio.to_thread(cached, f"{group}/{version}", build)
        return hc.json_response(body)


def _skip_unused_lifecycle_signals(app: Sanic) -> None:
    """Sanic dispatches ~14 ``http.*`` signals per request (lifecycle, routing, handler), each
    a failed route look-up when nobody listens; with no listener registered, answer at once."""
    if any(str(r.path).startswith("http.") for r in app.signal_router.routes):
        return
    router = app.signal_router
    original = router.dispatch

    async def dispatch(event: Any, **kw: Any) -> Any:
        if isinstance(event, str) and event.startswith("http."):
            return None
        return await original(event, **kw)

    router.dispatch = dispatch  # type: ignore[method-assign]


async def serve(api: ApiServer, host: str, port: int, stop: asyncio.Event) -> None:
    """Run the HTTP server in the current loop until ``stop`` is set."""
    app = build_app(api)
    await api.start()
    server = await app.create_server(host=host, port=port, return_asyncio_server=True,
                                     access_log=False)
    assert server is not None
    await server.startup()
    _skip_unused_lifecycle_signals(app)
    await server.before_start()
    await server.after_start()
    log.info("apiserver serving", host=host, port=port)
    try:
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
