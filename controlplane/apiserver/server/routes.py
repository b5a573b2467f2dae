"""HTTP routing of the apiserver: the Sanic app, verb dispatch, metrics around every request,
Status answers for every failure, discovery and OpenAPI documents, the proxy routes.

``build_app(api)`` wires URLs to the endpoints; ``dispatch`` resolves ``/api``/``/apis`` paths
to an ``endpoints.common.Target`` and a verb and runs the verb's endpoint. Neighbours:
``app.py`` (``ApiServer`` state and ``serve``), ``endpoints/`` (the verbs),
``discovery/documents.py``, ``discovery/openapi.py`` and ``discovery/openapi_v2.py``, ``metrics.py`` (``/metrics``).
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol
from urllib.parse import parse_qs

from sanic import Request, Sanic
from sanic.exceptions import SanicException
from sanic.response import HTTPResponse, raw, text

from controlplane.apiserver.discovery import aggregated
from controlplane.apiserver.discovery import documents as discovery
from controlplane.apiserver.discovery import openapi, openapi_v2
from controlplane.apiserver.endpoints import common as hc
from controlplane.apiserver.endpoints import delete, metrics, proxies, read, subresources, watch, write
from controlplane.apiserver.endpoints.common import Api
from controlplane.apiserver.meta import errors
from controlplane.apiserver.meta.jsonutil import dumps
from controlplane.apiserver.meta.request import GROUP_VERSION
from controlplane.apiserver.persistence.watchcache import TooLargeResourceVersionError
from controlplane.apiserver.server import authapis, componentstatus
from controlplane.apiserver.server.limits import TOO_MANY, RequestLimits, TooManyRequests
from controlplane.apiserver.server.metrics import render
from controlplane.apiserver.strategy.base import FIELD_STRICT, FIELD_WARNINGS, WARNINGS
from controlplane.log import get_logger
from controlplane.machinery.healthz import HealthChecks
from controlplane.storage.interface import CompactedError, FutureRevisionError, StorageError

log = get_logger(__name__)


class ServedApi(Api, Protocol):
    """What the routes need beyond the endpoints' ``Api`` (``app.ApiServer``)."""

    health: HealthChecks
    limits: RequestLimits
    component_statuses: componentstatus.ComponentStatuses


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


async def dispatch(api: ServedApi, request: Request, prefix: str, path: str) -> HTTPResponse | None:
    code = [500]
    verb, labels = request.method.lower(), ("", "", "", "")
    try:
        t = hc.resolve(api.registry, prefix, path)
        verb = _verb(request, t)
        labels = (t.info.group, t.info.version, t.info.plural, t.subresource)
        with metrics.observe(verb, *labels, code):
            # warnings go with errors too (a deprecated version's, a policy's Warn before a Deny)
            warnings: list[str] = [t.info.warning] if t.info.warning else []
            try:
                token = WARNINGS.set(warnings)
                quiet = FIELD_WARNINGS.set(request.args.get("fieldValidation") != "Ignore")
                strict = FIELD_STRICT.set(request.args.get("fieldValidation") == "Strict")
                gv = GROUP_VERSION.set((t.info.group, t.info.version))
                try:
                    resp = await api.limits.run(verb, request.args.get("timeout"),
                                                lambda: _serve_verb(api, request, t, verb))
                except TooManyRequests:
                    code[0] = 429
                    return text(TOO_MANY, status=429, headers={"Retry-After": "1", "X-Content-Type-Options": "nosniff"},
                                content_type="text/plain; charset=utf-8")
                finally:
                    WARNINGS.reset(token)
                    FIELD_WARNINGS.reset(quiet)
                    FIELD_STRICT.reset(strict)
                    GROUP_VERSION.reset(gv)
                    api.security.finish(request)  # a stream (watch, log -f) ends: audit ResponseComplete
                if warnings and resp is not None:
                    resp.headers.extend(_warning_headers(warnings))
                code[0] = resp.status if resp is not None else 200
                return resp
            except errors.ApiError as e:
                code[0] = e.code
                if not warnings:
                    raise
                resp = hc.status_response(e)
                resp.headers.extend(_warning_headers(warnings))
                return resp
    except errors.ApiError as e:
        if labels[2] == "":
            metrics.REQUESTS.labels(verb, "", "", "", "", str(e.code)).inc()
        return hc.status_response(e)
    except StorageError as e:
        return hc.status_response(_storage_status(e, request))


def _warning_headers(warnings: list[str]) -> list[tuple[str, str]]:
    return [("Warning", f'299 - "{_quote(m)}"') for m in warnings[:20]]


async def _aggregated(api: Api, request: Request, apiservice: dict[str, Any], parts: list[str]) -> HTTPResponse | None:
    """Proxy to an aggregated API server, counted in apiserver_request_total like local requests."""
    resource = ""
    if len(parts) > 2:
        rest = parts[2:]
        resource = rest[2] if rest[0] == "namespaces" and len(rest) > 2 else rest[0]
    resp = await api.aggregator.handle(request, apiservice)
    code = resp.status if resp is not None else 200
    metrics.REQUESTS.labels(request.method.lower(), parts[0], parts[1], resource, "", str(code)).inc()
    return resp


def _security_api(t: hc.Target) -> bool:
    g = t.info.group
    return g in ("authentication.k8s.io", "authorization.k8s.io") or (t.subresource == "token" and g == "")


def _quote(message: str) -> str:
    return message.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


def _storage_status(e: StorageError, request: Request) -> errors.ApiError:
    if isinstance(e, (TooLargeResourceVersionError, FutureRevisionError)):
        message = str(e) if isinstance(e, TooLargeResourceVersionError) else f"Too large resource version: {e.requested}"
        return errors.ApiError(504, "Timeout", message,
                               details={"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
                                        "retryAfterSeconds": 1})
    if isinstance(e, CompactedError):
        return errors.gone(f"too old resource version: {e.requested} ({e.compact_revision})")
    log.warning("storage error", error=str(e), path=request.path)
    return errors.ApiError(503, "ServiceUnavailable", f"storage error: {e}")


async def _serve_verb(api: ServedApi, request: Request, t: hc.Target, verb: str) -> HTTPResponse | None:
    """The review/security APIs first (``authapis``), else the verb's endpoint."""
    if t.info.group == "" and t.info.plural == "componentstatuses":
        return await componentstatus.handle(api.component_statuses, request, t, verb)
    resp = await authapis.handle(api.security, request, t, verb) if _security_api(t) else None
    if resp is None:
        resp = await _run_verb(api, request, t, verb)
    return resp


async def _run_verb(api: Api, request: Request, t: hc.Target, verb: str) -> HTTPResponse | None:
    if t.subresource and t.subresource not in ("status", "finalize", "approval", "ephemeralcontainers"):
        return await subresources.handle(api, request, t, verb)
    if t.subresource == "ephemeralcontainers" and verb not in ("get", "update", "patch"):
        raise errors.method_not_allowed(f"{request.method} on {t.info.plural}/{t.subresource} is not supported")
    if verb == "get":
        return await read.get(api, request, t)
    if verb == "list":
        return await read.list_(api, request, t)
    if verb == "watch":
        return await watch.watch(api, request, t)
    if verb == "create":
        return await write.create(api, request, t)
    if verb == "update":
        return await write.update(api, request, t)
    if verb == "patch":
        return await write.patch(api, request, t)
    if verb == "delete":
        return await delete.delete(api, request, t)
    if verb == "deletecollection":
        return await delete.delete_collection(api, request, t)
    raise errors.method_not_allowed(f"{request.method} is not supported")


def build_app(api: ServedApi, name: str = "controlplane-apiserver") -> Sanic:
    app = Sanic(name, configure_logging=False)
    app.config.REQUEST_MAX_SIZE = 64 * 1024 * 1024  # we answer 413 ourselves above 3 MiB
    app.config.RESPONSE_TIMEOUT = 4 * 3600
    app.config.REQUEST_TIMEOUT = 120
    app.config.KEEP_ALIVE_TIMEOUT = 120
    app.config.NOISY_EXCEPTIONS = False
    app.config.TOUCHUP = False
    app.ctx.api = api
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    security = api.security
    if security.filters_requests:  # authentication, impersonation, authorization, audit (security.py)
        app.register_middleware(security.filter, "request", priority=1000)
        if security.audit_log is not None:
            app.register_middleware(security.respond, "response")

    @app.route("/.well-known/openid-configuration", methods=["GET"])
    async def openid_configuration(_: Request) -> HTTPResponse:
        return hc.json_response(authapis.openid_configuration(security))

    @app.route("/openid/v1/jwks", methods=["GET"])
    async def jwks(_: Request) -> HTTPResponse:
        return raw(dumps(authapis.jwks(security)), content_type="application/jwk-set+json")

    @app.route("/version", methods=["GET"])
    async def version(_: Request) -> HTTPResponse:
        return hc.json_response(discovery.VERSION_INFO)

    def health_route(endpoint: str) -> Any:
        async def health(request: Request, check: str = "") -> HTTPResponse:
            code, body = api.health.answer(endpoint, check, parse_qs(request.query_string, keep_blank_values=True))
            return text(body, status=code, headers={"X-Content-Type-Options": "nosniff"},
                        content_type="text/plain; charset=utf-8")
        return health

    for probe in ("healthz", "livez", "readyz"):  # machinery.healthz: Kubernetes' named checks
        app.add_route(health_route(probe), f"/{probe}", methods=["GET"], name=probe)
        app.add_route(health_route(probe), f"/{probe}/<check:path>", methods=["GET"], name=f"{probe}-check")

    @app.route("/metrics", methods=["GET"])
    async def prom(_: Request) -> HTTPResponse:
        body, ctype = render()
        return raw(body, content_type=ctype)

    @app.route("/api", methods=["GET"])
    async def api_root(request: Request) -> HTTPResponse:
        form = aggregated.negotiate(request.headers.get("accept") or "")
        if form == aggregated.LEGACY:
            return hc.json_response(discovery.api_versions(), headers=_VARY)
        return await _aggregated_discovery(api, request, "api", form)

    @app.route("/apis", methods=["GET"])
    async def apis_root(request: Request) -> HTTPResponse:
        form = aggregated.negotiate(request.headers.get("accept") or "")
        if form == aggregated.LEGACY:
            return hc.json_response(api.aggregator.group_list(discovery.api_group_list(api.registry)), headers=_VARY)
        return await _aggregated_discovery(api, request, "apis", form)

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
        if len(parts) >= 2:  # an APIService sends this group/version elsewhere (kube-aggregator)
            remote = api.aggregator.remote(parts[0], parts[1])
            if remote is not None:
                return await _aggregated(api, request, remote, parts)
        elif len(parts) == 1 and request.method == "GET":
            doc = api.aggregator.group(parts[0])
            if doc is not None:
                return hc.json_response(doc)
        if len(parts) <= 2 and request.method == "GET":
            doc = (discovery.api_group(api.registry, parts[0]) if len(parts) == 1
                   else discovery.api_resource_list(api.registry, parts[0], parts[1]))
            if doc is None:
                return hc.status_response(errors.ApiError(404, "NotFound", "the server could not find the requested resource"))
            return hc.json_response(doc)
        return await dispatch(api, request, "apis", path)

    _openapi_routes(app, api)
    proxies.install(app)  # pods/log and pods/exec -> the node agent

    @app.exception(Exception)
    async def on_error(request: Request, exc: Exception) -> HTTPResponse:
        if isinstance(exc, errors.ApiError):
            return hc.status_response(exc)
        if isinstance(exc, SanicException):
            code = getattr(exc, "status_code", 500) or 500
            reason = {404: "NotFound", 405: "MethodNotAllowed", 413: "RequestEntityTooLarge"}.get(code, "InternalError")
            return hc.status_response(errors.ApiError(code, reason, str(exc) or reason))
        log.exception("unhandled error", path=request.path, method=request.method)
        return hc.status_response(errors.ApiError(500, "InternalError", f"Internal error occurred: {exc}"))

    return app


_VARY = {"Vary": "Accept"}


async def _aggregated_discovery(api: ServedApi, request: Request, root: str, form: str | None) -> HTTPResponse:
    """``/api`` or ``/apis`` as ``APIGroupDiscoveryList`` (``aggregation/discovery.py``), with
    its ETag (304 on a matching ``If-None-Match``), or 406 when only forms we do not serve
    (protobuf) were asked."""
    if form is None:
        return hc.status_response(errors.ApiError(
            406, "NotAcceptable", "only the following media types are accepted: application/json, "
            + ", ".join(aggregated.content_type(v) for v in aggregated.VERSIONS)))
    body, etag = await api.aggregator.discovery.document(root, form)
    headers = {"ETag": etag, **_VARY}
    if etag in [t.strip() for t in (request.headers.get("if-none-match") or "").split(",")]:
        return HTTPResponse(status=304, headers=headers)
    return raw(body, content_type=aggregated.content_type(form), headers=headers)


def _openapi_routes(app: Sanic, api: Api) -> None:
    """``/openapi/v3`` documents (``discovery/openapi.py``) and ``/openapi/v2`` (JSON or gnostic
    protobuf, ``discovery/openapi_v2.py``), cached per registry generation."""
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
        return hc.json_response(cached("root", lambda: openapi.v3_root(api.registry)))

    @app.route("/openapi/v3/<path:path>", methods=["GET"])
    async def v3_gv(_: Request, path: str) -> HTTPResponse:
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

    @app.route("/openapi/v2", methods=["GET"])
    async def v2(request: Request) -> HTTPResponse:
        """As kube-openapi's handler: the first acceptable form (JSON, or the protobuf client-go
        asks for), ``ETag`` and ``Vary: Accept``, 304 on a matching ``If-None-Match``, else 406."""
        form = openapi_v2.negotiate(request.headers.get("accept") or "")
        if form is None:
            return hc.status_response(errors.ApiError(
                406, "NotAcceptable", "only the following media types are accepted: application/json, "
                + openapi_v2.PROTOBUF))
        served = await asyncio.to_thread(openapi_v2.served, api.registry, form)
        headers = {"ETag": served.etag, **_VARY}
        tags = [t.strip() for t in (request.headers.get("if-none-match") or "").split(",")]
        if served.etag in tags or "*" in tags:
            return HTTPResponse(status=304, headers=headers)
        return raw(served.body, content_type=served.content_type, headers=headers)


def skip_unused_signals(app: Sanic) -> None:
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
