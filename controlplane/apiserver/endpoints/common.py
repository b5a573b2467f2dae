"""What every endpoint shares: the server state it works on (``Api``), resolving a URL to a
resource, the request's body and query options, and rendering responses.

URL shapes (as the real apiserver): ``/api/v1/...`` and ``/apis/<group>/<version>/...`` then
``[namespaces/<ns>/]<plural>[/<name>[/<subresource>]]``. Neighbours: ``server/routes.py``
resolves requests here and calls the verb endpoints (``read``, ``watch``, ``write``,
``delete``, ``scale``, ``binding``); ``server/app.py``'s ``ApiServer`` is the ``Api``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Protocol

from sanic import Request
from sanic.response import HTTPResponse, raw

from controlplane.apiserver.admission import AdmissionChain
from controlplane.apiserver.discovery.registry import Registry, ResourceInfo
from controlplane.apiserver.encoding import body as bodies
from controlplane.apiserver.meta import errors
from controlplane.apiserver.meta.jsonutil import dumps, loads
from controlplane.apiserver.persistence.caches import WatchCaches
from controlplane.apiserver.persistence.store import ObjectStore
from controlplane.apiserver.strategy.base import StrategyContext
from controlplane.storage.interface import Backend

JSON = bodies.JSON
PATCH_TYPES = {
    "application/json-patch+json", "application/merge-patch+json",
    "application/strategic-merge-patch+json", "application/apply-patch+yaml",
    "application/apply-patch+json",
}


class Api(StrategyContext, Protocol):
    """The state of one apiserver process the endpoints work on (``server.app.ApiServer``)."""

    backend: Backend
    registry: Registry
    store: ObjectStore
    caches: WatchCaches
    watchers: set[Any]  # open watch streams (closed on shutdown)
    stopping: asyncio.Event
    kubelet_ssl: Any  # TLS context for the node agents' endpoints (None: plain HTTP)
    security: Any  # server.security.Security: audit stages of streams (stream_started, finish)
    admission: AdmissionChain  # mutate / validate / connect

    def spawn(self, coro: Any) -> "asyncio.Task[Any]":
        """Run ``coro`` in the background, owned by the server (cancelled on shutdown)."""
        ...


@dataclass
class Target:
    """What a request addresses."""

    info: ResourceInfo
    namespace: str | None  # None: all namespaces (lists/watches) or a cluster-scoped resource
    name: str | None
    subresource: str = ""


def resolve(registry: Registry, prefix: str, path: str) -> Target:
    """Map ``/api``/``/apis`` path segments after the group/version to a Target (404 if none)."""
    parts = [p for p in path.split("/") if p]
    if prefix == "api":
        if not parts:
            raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")
        group, version, rest = "", parts[0], parts[1:]
    else:
        if len(parts) < 2:
            raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")
        group, version, rest = parts[0], parts[1], parts[2:]
    if not rest:
        raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")
    namespace: str | None = None
    if rest[0] == "namespaces" and len(rest) >= 3:
        ns_info = registry.get(group, version, rest[2])
        # /api/v1/namespaces/<ns>/<plural>... (but /api/v1/namespaces/<ns>/status|finalize
        # addresses the namespace itself)
        if not (group == "" and rest[2] in ("status", "finalize") and len(rest) == 3):
            if ns_info is None:
                raise _unknown(group, version, rest[2])
            namespace, rest = rest[1], rest[2:]
    info = registry.get(group, version, rest[0])
    if info is None:
        raise _unknown(group, version, rest[0])
    if namespace is not None and not info.namespaced:
        raise _unknown(group, version, rest[0])
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else ""
    if len(rest) > 3 or (sub and not info.has(sub)):
        raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")
    return Target(info, namespace, name, sub)


def _unknown(group: str, version: str, plural: str) -> errors.ApiError:
    gv = f"{group}/{version}" if group else version
    return errors.ApiError(404, "NotFound", f"the server could not find the requested resource ({plural} in {gv})",
                           details={"group": group, "kind": plural})


# --- bodies ---------------------------------------------------------------------------------

def media_type(request: Request) -> str:
    return (request.headers.get("content-type") or JSON).split(";")[0].strip().lower()


def raw_body(request: Request) -> bytes:
    return bodies.check_size(request.body or b"")


def decode_body(request: Request) -> dict[str, Any]:
    """The request's object from JSON, YAML or Kubernetes protobuf (400 when malformed)."""
    return bodies.decode(request.body or b"", media_type(request))


# --- query options --------------------------------------------------------------------------

def dry_run(request: Request) -> bool:
    values = request.args.getlist("dryRun") or []
    for v in values:
        if v != "All":
            raise errors.bad_request(f"dryRun: Unsupported value: {v!r}: supported values: \"All\"")
    return bool(values)


def field_validation(request: Request) -> str:
    v = request.args.get("fieldValidation") or "Warn"  # the server default since 1.27
    if v not in ("Strict", "Warn", "Ignore"):
        raise errors.bad_request(f"fieldValidation: Unsupported value: {v!r}")
    return v


def field_manager(request: Request, *, apply: bool = False) -> str:
    fm = request.args.get("fieldManager")
    if fm:
        if len(fm) > 128:
            raise errors.bad_request("fieldManager: Too long: may not be longer than 128")
        return fm
    if apply:
        raise errors.bad_request("PATCH, application/apply-patch+yaml, requires fieldManager to be set")
    ua = request.headers.get("user-agent") or "unknown"
    return ua.split("/")[0][:128]


def bool_arg(request: Request, name: str) -> bool:
    return (request.args.get(name) or "").lower() in ("true", "1")


def parse_rv(value: Any, *, what: str = "resourceVersion") -> int:
    """A non-negative integer query value (``resourceVersion``, ``limit``, ...); 0 when unset."""
    if value in (None, ""):
        return 0
    try:
        rv = int(value)
    except (TypeError, ValueError):
        raise errors.bad_request(f"invalid {what}: {value!r}") from None
    if rv < 0:
        raise errors.bad_request(f"invalid {what}: {value!r}")
    return rv


# --- responses ------------------------------------------------------------------------------

def output(info: ResourceInfo, obj: dict[str, Any]) -> dict[str, Any]:
    """An object as served at ``info``'s version (custom resources may be stored at another;
    a built-in served at several versions is converted by its strategy)."""
    if info.converted:
        return info.strategy.to_version(info, obj)
    if info.is_custom and obj.get("apiVersion") != info.api_version:
        obj["apiVersion"] = info.api_version
    return obj


def output_bytes(info: ResourceInfo, items: list[bytes]) -> list[bytes]:
    """Stored JSON items as served at ``info``'s version (unchanged when stored as served)."""
    if info.converted:
        return [dumps(info.strategy.to_version(info, loads(b))) for b in items]
    if not info.is_custom or info.version == info.storage_version:
        return items
    old = b'"apiVersion":"%s/%s"' % (info.group.encode(), info.storage_version.encode())
    new = b'"apiVersion":"%s"' % info.api_version.encode()
    return [b.replace(old, new, 1) for b in items]


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> HTTPResponse:
    return raw(obj if isinstance(obj, bytes) else dumps(obj), status=status,
               content_type=JSON, headers=headers)


def status_response(err: errors.ApiError) -> HTTPResponse:
    return json_response(err.status(), status=err.code)


def wants_table(request: Request) -> bool:
    accept = request.headers.get("accept") or ""
    return "as=Table" in accept and "g=meta.k8s.io" in accept
