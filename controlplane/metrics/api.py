"""``metrics.k8s.io/v1beta1`` over HTTP, as metrics-server serves it behind an APIService:
discovery (``/apis``, ``/apis/metrics.k8s.io``, ``/apis/metrics.k8s.io/v1beta1``), NodeMetrics
(``/nodes``, ``/nodes/NAME``) and PodMetrics (``/pods``, ``/namespaces/NS/pods``,
``/namespaces/NS/pods/NAME``) with ``labelSelector`` and ``fieldSelector`` (``metadata.name``,
``metadata.namespace``), Table answers for ``kubectl get``, ``Status`` errors (404 for an
object without metrics, 400 for a bad selector, 405 for watch), and ``/healthz``, ``/livez``,
``/readyz`` (ready once a scrape cycle has been stored), and the process's own ``/metrics``
(as metrics-server serves its own on its secure port, authorized as ``get /metrics``).

Objects are rendered from ``storage.Storage`` and the slim caches; each one's JSON is kept
until the next scrape cycle (or a label change), so a list of 150,000 PodMetrics joins stored
bytes instead of encoding every item again, and the unfiltered list of every pod is kept whole
until the next cycle. A new cycle is rendered (``render``) before it is served (``publish``):
requests in the meantime get the previous cycle, already rendered, instead of waiting seconds
for 150,000 objects to be encoded. ``creationTimestamp`` is the time the object was rendered (metrics-server
uses the time of the request: objects are not stored anywhere).
"""

from __future__ import annotations

import asyncio
import functools
import time
from fractions import Fraction
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from controlplane.client.informer import Informer
from controlplane.client.rest import dumps, loads
from controlplane.machinery.quantity import format_quantity, parse_quantity
from controlplane.machinery.selectors import LabelSelector, parse_field_selector, parse_label_selector
from controlplane.machinery.timestamps import go_duration, rfc3339
from controlplane.client.delegatedauth import RequestAuth
from controlplane.metrics.storage import Storage

GROUP, VERSION = "metrics.k8s.io", "v1beta1"
GV = f"{GROUP}/{VERSION}"
BASE = f"/apis/{GV}"
RESOURCES = [
    {"name": "nodes", "singularName": "", "namespaced": False, "kind": "NodeMetrics", "verbs": ["get", "list"]},
    {"name": "pods", "singularName": "", "namespaced": True, "kind": "PodMetrics", "verbs": ["get", "list"]},
]


@functools.lru_cache(maxsize=16384)
def _timestamp(ts: float) -> str:
    return rfc3339(ts)  # the pods of one node's page share their points' times


def _typed(kind: str, raw: bytes) -> bytes:
    """One object's bytes as a GET of it answers: with its kind and apiVersion. The objects
    are rendered without them, as metrics-server's list items are (a typed list's items carry
    no TypeMeta): ~55 bytes less per item in the lists, which the HPA reads every period."""
    return b'{"kind":"' + kind.encode() + b'","apiVersion":"' + GV.encode() + b'",' + raw[1:]


_POD_HEAD = b'{"metadata":{"name":%s,"namespace":%s,"creationTimestamp":"%s","labels":%s},"timestamp":"%s","window":"%s","containers":['
_CONTAINER = b'{"name":%s,"usage":{"cpu":"%s","memory":"%s"}}'


@functools.lru_cache(maxsize=4096)
def _json_str(text: str) -> bytes:
    return dumps(text)  # namespaces' and containers' names, shared by many pods (a pod's own name is not)


@functools.lru_cache(maxsize=1024)
def _ascii(text: str) -> bytes:
    return text.encode()  # timestamps and windows, shared by many pods


@functools.lru_cache(maxsize=16384)
def _window(seconds: float) -> str:
    return go_duration(seconds)


def cpu_quantity(nano: int) -> str:
    """Nanocores as Kubernetes' canonical DecimalSI quantity (``500m``, ``523411n``, ``2``)."""
    if nano < 0:
        return format_quantity(Fraction(nano, 10**9))
    if nano == 0:
        return "0"
    for div, suffix in ((10**9, ""), (10**6, "m"), (10**3, "u")):
        if nano % div == 0:
            return f"{nano // div}{suffix}"
    return f"{nano}n"


_BINARY = ("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei")


def memory_quantity(b: int) -> str:
    """Bytes as Kubernetes' canonical BinarySI quantity (``14752Ki``, ``64Mi``, ``1000``)."""
    if b < 1024:
        return str(b) if b >= 0 else format_quantity(b, "BinarySI")
    k = 0
    while k < 6 and b % 1024 == 0:
        b //= 1024
        k += 1
    return f"{b}{_BINARY[k]}"


def status(code: int, reason: str, message: str, details: dict | None = None) -> web.Response:
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                            "message": message, "reason": reason, "code": code}
    if details:
        body["details"] = details
    return web.Response(status=code, body=dumps(body), content_type="application/json")


def not_found(resource: str, name: str) -> web.Response:
    return status(404, "NotFound", f'{resource}.{GROUP} "{name}" not found',
                  {"name": name, "group": GROUP, "kind": resource})


async def guarded(auth: RequestAuth | None, request: web.Request, handler: Any, what: str) -> web.StreamResponse:
    """An aggregated metrics API's front (the Metrics API's and the custom metrics adapter's):
    delegated authn/authz, GET only, no watch (``what``: the resources, for its message), and
    an unknown path as a ``Status``."""
    if auth is not None:
        denied = await auth.check(request)
        if denied is not None:
            return status(denied.code, denied.reason, denied.message)
    if request.method not in ("GET", "HEAD"):
        return status(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
    if request.query.get("watch") in ("1", "true"):
        return status(405, "MethodNotAllowed", f"watch is not supported on {what}")
    try:
        return await handler(request)
    except web.HTTPNotFound:
        return status(404, "NotFound", "the server could not find the requested resource")


class MetricsApi:
    def __init__(self, storage: Storage, nodes: Informer, pods: Informer,
                 auth: RequestAuth | None = None, metrics: CollectorRegistry | None = None) -> None:
        self.storage = storage
        self.metrics = metrics  # the process's own metrics, also on this port (as metrics-server's /metrics)
        self.nodes = nodes
        self.pods = pods
        self.auth = auth  # authentication and authorization (auth.py); None: everyone may read
        self._node_cache: dict[str, tuple[int, str, bytes]] = {}
        self._pod_cache: dict[tuple[str, str], tuple[int, str, bytes]] = {}
        self._labels: dict[int, tuple[dict[str, str], bytes]] = {}  # id(label set) -> (it, its JSON)
        self._all_pods: tuple[int, bytes] | None = None  # (storage version, the unfiltered list)
        # (cycle, node cache, pod cache, unfiltered list) of a cycle rendered but not yet served
        self._staged: tuple[Storage, dict, dict, bytes] | None = None
        self.app = web.Application(middlewares=[self._guard])
        r = self.app.router
        for path in ("/healthz", "/livez"):
            r.add_get(path, lambda _: web.Response(text="ok"))
        r.add_get("/readyz", self.readyz)
        if metrics is not None:
            r.add_get("/metrics", self.own_metrics)
        r.add_get("/apis", self.group_list)
        r.add_get(f"/apis/{GROUP}", self.group)
        r.add_get(BASE, self.resource_list)
        r.add_get(f"{BASE}/nodes", self.list_nodes)
        r.add_get(f"{BASE}/nodes/{{name}}", self.get_node)
        r.add_get(f"{BASE}/pods", self.list_pods)
        r.add_get(f"{BASE}/namespaces/{{ns}}/pods", self.list_pods)
        r.add_get(f"{BASE}/namespaces/{{ns}}/pods/{{name}}", self.get_pod)

    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        return await guarded(self.auth, request, handler, "metrics.k8s.io resources")

    async def own_metrics(self, request: web.Request) -> web.Response:
        """The Prometheus exposition (``get /metrics``: ``system:monitoring``)."""
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        body = await asyncio.to_thread(encoder, self.metrics)
        return web.Response(body=body, headers={"Content-Type": content_type})

    # -- discovery --------------------------------------------------------------------------
    async def readyz(self, _: web.Request) -> web.Response:
        if not self.storage.stored_once:
            return web.Response(status=503, text="metric storage not ready")
        return web.Response(text="ok")

    @staticmethod
    def _group() -> dict:
        gv = {"groupVersion": GV, "version": VERSION}
        return {"name": GROUP, "versions": [gv], "preferredVersion": gv}

    async def group_list(self, _: web.Request) -> web.Response:
        return web.json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": [self._group()]})

    async def group(self, _: web.Request) -> web.Response:
        return web.json_response({"kind": "APIGroup", "apiVersion": "v1", **self._group()})

    async def resource_list(self, _: web.Request) -> web.Response:
        return web.json_response({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": GV,
                                  "resources": RESOURCES})

    # -- rendering ---------------------------------------------------------------------------
    def _node_bytes(self, node: dict, storage: Storage | None = None, cache: dict | None = None,
                    now: str | None = None) -> bytes | None:
        storage = storage or self.storage
        cache = self._node_cache if cache is None else cache
        md = node["metadata"]
        name = md["name"]
        ver, rv = storage.version, md.get("resourceVersion") or ""
        hit = cache.get(name)
        if hit is not None and hit[0] == ver and hit[1] == rv:
            return hit[2]
        u = storage.node(name)
        if u is None:
            return None
        obj = {"metadata": {"name": name, "creationTimestamp": now or rfc3339(time.time()),
                            "labels": md.get("labels") or {}},
               "timestamp": _timestamp(u.ts), "window": _window(u.window),
               "usage": {"cpu": cpu_quantity(u.cpu_nano), "memory": memory_quantity(u.memory)}}
        raw = dumps(obj)
        cache[name] = (ver, rv, raw)
        return raw

    def _pod_bytes(self, pod: dict, storage: Storage | None = None, cache: dict | None = None,
                   now: str | None = None) -> bytes | None:
        storage = storage or self.storage
        cache = self._pod_cache if cache is None else cache
        md = pod["metadata"]
        key = (md.get("namespace") or "", md["name"])
        ver, rv = storage.version, md.get("resourceVersion") or ""
        hit = cache.get(key)
        if hit is not None and hit[0] == ver and hit[1] == rv:
            return hit[2]
        m = storage.pod(key)
        if m is None:
            return None
        ts, window, containers = m
        # what dumps() of {"metadata": {name, namespace, creationTimestamp, labels}, "timestamp",
        # "window", "containers": [{name, usage: {cpu, memory}}]} gives, joined from pieces
        # encoded once (the names, a label set's JSON, the times): a cycle renders every pod
        head = _POD_HEAD % (dumps(key[1]), _json_str(key[0]), _ascii(now or rfc3339(time.time())),
                            self._labels_json(md.get("labels") or {}), _ascii(_timestamp(ts)), _ascii(_window(window)))
        if len(containers) == 1:
            c, cpu, mem = containers[0]
            raw = head + _CONTAINER % (_json_str(c), cpu_quantity(cpu).encode(), memory_quantity(mem).encode()) + b"]}"
        else:
            raw = head + b",".join(_CONTAINER % (_json_str(c), cpu_quantity(cpu).encode(), memory_quantity(mem).encode())
                                   for c, cpu, mem in containers) + b"]}"
        cache[key] = (ver, rv, raw)
        return raw

    def _labels_json(self, labels: dict[str, str]) -> bytes:
        """A label set's JSON, kept per dict (the slim pod cache shares one dict per label set
        and never changes one; the entry holds the dict, so its id is not reused meanwhile)."""
        if not labels:
            return b"{}"
        hit = self._labels.get(id(labels))
        if hit is None or hit[0] is not labels:
            if len(self._labels) >= 100_000:
                self._labels.clear()
            hit = self._labels[id(labels)] = (labels, dumps(labels))
        return hit[1]

    async def render(self, cycle: Storage, chunk: int = 1000) -> None:
        """Render every object of a prepared, not yet served scrape cycle (``Storage.prepare``)
        and the unfiltered list of every pod, ``chunk`` objects at a time so requests
        interleave; ``publish`` serves them together with the cycle. Requests meanwhile are
        answered from the current cycle, whose objects are rendered already: at 150,000 pods
        rendering takes seconds, and a list that had to wait for it took as long."""
        now = rfc3339(time.time())
        nodes: dict[str, tuple[int, str, bytes]] = {}
        pods: dict[tuple[str, str], tuple[int, str, bytes]] = {}
        for n, node in enumerate(self.nodes.list(), 1):
            self._node_bytes(node, cycle, nodes, now)
            if n % chunk == 0:
                await asyncio.sleep(0)
        items = []
        for n, pod in enumerate(self.pods.list(), 1):
            raw = self._pod_bytes(pod, cycle, pods, now)
            if raw is not None:
                items.append(raw)
            if n % chunk == 0:
                await asyncio.sleep(0)
        self._staged = (cycle, nodes, pods, self._list_body("PodMetrics", items))

    def publish(self, cycle: Storage) -> None:
        """Serve what ``render`` made of ``cycle``, now that the storage has adopted it (no
        await in between: readers see the old cycle or the new one, whole)."""
        staged, self._staged = self._staged, None
        if staged is None or staged[0] is not cycle or self.storage.pod_last is not cycle.pod_last \
                or self.storage.version != cycle.version:
            return  # not rendered, or not the cycle being served: objects render on demand
        _, self._node_cache, self._pod_cache, body = staged
        self._all_pods = (cycle.version, body)

    def _prune(self) -> None:
        if len(self._pod_cache) > 2 * max(1, len(self.pods)):
            ver = self.storage.version
            self._pod_cache = {k: v for k, v in self._pod_cache.items() if v[0] == ver}
        if len(self._node_cache) > 2 * max(1, len(self.nodes)):
            self._node_cache = {}

    # -- handlers ---------------------------------------------------------------------------
    @staticmethod
    def _selectors(request: web.Request) -> tuple[LabelSelector, Any]:
        return parse_label_selector(request.query.get("labelSelector")), \
            parse_field_selector(request.query.get("fieldSelector"))

    def _table_or_list(self, request: web.Request, kind: str, items: list[bytes]) -> web.Response:
        if "as=Table" in request.headers.get("Accept", ""):
            return self._table(items, kind)
        return web.Response(body=self._list_body(kind, items), content_type="application/json")

    @staticmethod
    def _list_body(kind: str, items: list[bytes]) -> bytes:
        return b'{"kind":"' + kind.encode() + b'List","apiVersion":"' + GV.encode() + \
            b'","metadata":{},"items":[' + b",".join(items) + b"]}"

    def _table(self, items: list[bytes], kind: str) -> web.Response:
        rows = []
        for raw in items:
            o = loads(raw)
            if kind == "NodeMetrics":
                cells = [o["metadata"]["name"], o["usage"]["cpu"], o["usage"]["memory"], o["window"]]
            else:
                cpu = sum(parse_quantity(c["usage"]["cpu"]) for c in o["containers"])
                mem = sum(parse_quantity(c["usage"]["memory"]) for c in o["containers"])
                cells = [o["metadata"]["name"], format_quantity(cpu), format_quantity(mem, "BinarySI"), o["window"]]
            rows.append({"cells": cells, "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                                    "metadata": o["metadata"]}})
        cols = [{"name": "Name", "type": "string", "format": "name", "description": "Name of the resource"},
                {"name": "CPU", "type": "string", "format": "", "description": "CPU usage"},
                {"name": "Memory", "type": "string", "format": "", "description": "Memory usage"},
                {"name": "Window", "type": "string", "format": "", "description": "Time window of the usage"}]
        return web.json_response({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {},
                                  "columnDefinitions": cols, "rows": rows})

    async def list_nodes(self, request: web.Request) -> web.Response:
        try:
            lsel, fsel = self._selectors(request)
        except ValueError as e:
            return status(400, "BadRequest", str(e))
        items = []
        for n in self.nodes.list():
            md = n["metadata"]
            if not lsel.matches(md.get("labels") or {}) or not fsel.matches({"metadata.name": md["name"]}):
                continue
            raw = self._node_bytes(n)
            if raw is not None:
                items.append(raw)
        self._prune()
        return self._table_or_list(request, "NodeMetrics", items)

    async def get_node(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        n = self.nodes.get_by(None, name)
        raw = self._node_bytes(n) if n is not None else None
        if raw is None:
            return not_found("nodes", name)
        if "as=Table" in request.headers.get("Accept", ""):
            return self._table([raw], "NodeMetrics")
        return web.Response(body=_typed("NodeMetrics", raw), content_type="application/json")

    async def list_pods(self, request: web.Request) -> web.Response:
        ns = request.match_info.get("ns")
        try:
            lsel, fsel = self._selectors(request)
        except ValueError as e:
            return status(400, "BadRequest", str(e))
        everything = ns is None and lsel.empty and fsel.empty and "as=Table" not in request.headers.get("Accept", "")
        if everything and self._all_pods is not None and self._all_pods[0] == self.storage.version:
            return web.Response(body=self._all_pods[1], content_type="application/json")
        items = []
        check_fields = not fsel.empty
        for p in self.pods.list(ns):
            md = p["metadata"]
            if not lsel.matches(md.get("labels") or {}):
                continue
            if check_fields and not fsel.matches({"metadata.name": md["name"], "metadata.namespace": md.get("namespace") or ""}):
                continue
            raw = self._pod_bytes(p)
            if raw is not None:
                items.append(raw)
        self._prune()
        resp = self._table_or_list(request, "PodMetrics", items)
        if everything:  # `kubectl top pods -A`: the whole cycle, kept until the next one
            self._all_pods = (self.storage.version, resp.body)
        return resp

    async def get_pod(self, request: web.Request) -> web.Response:
        ns, name = request.match_info["ns"], request.match_info["name"]
        p = self.pods.get_by(ns, name)
        raw = self._pod_bytes(p) if p is not None else None
        if raw is None:
            return not_found("pods", name)
        if "as=Table" in request.headers.get("Accept", ""):
            return self._table([raw], "PodMetrics")
        return web.Response(body=_typed("PodMetrics", raw), content_type="application/json")

