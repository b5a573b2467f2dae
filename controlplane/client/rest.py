"""A small async REST client for the apiserver (aiohttp), used by every component that
reaches the cluster: informers, controllers, the node agent and the scheduler.

No code generation: objects are plain dicts and resources are ``resources.Resource``
descriptors. Failures come back as ``ApiStatusError`` carrying the Kubernetes ``Status``
(``code``, ``reason``, ``message``). ``watch`` yields ``(type, object)`` pairs read from the
chunked JSON-lines stream and can resume a dropped stream from the last resourceVersion seen
(bookmarks included); a 410 ``Expired`` raises ``ApiStatusError`` so callers relist.

Faults (``docs/reliability.md``): requests go through a client-side load balancer over the
apiservers (``balancer.Balancer``: the configured endpoints, comma-separated, plus, with
``discover``, those published in ``default/kubernetes`` Endpoints; health checks of each
``/readyz``). A request whose connection cannot be made (nothing sent) is tried on the next
endpoint at once; a GET that fails mid-way too (it is safe to repeat); any other connection
failure is a 503 ``ApiStatusError`` (the caller's backoff handles it) and moves the client to
a healthy endpoint. An answer with ``Retry-After`` (429 Too Many Requests from the apiserver's
in-flight limits, or a 5xx) is retried after that many seconds, up to ``MAX_RETRIES`` times,
as client-go does.

Neighbours: ``informer.Informer`` (list+watch into a cache), ``leaderelection`` (Leases),
``events.EventRecorder`` (Events), ``faults`` (which errors are transient).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import ssl
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, AsyncIterator
from urllib.parse import quote, urlencode

import aiohttp
import ujson
import yaml
from prometheus_client import Counter

from controlplane.client.balancer import Balancer, endpoints_from, scheme_of
from controlplane.client.lite import LiteConnectionError, LitePool
from controlplane.client.resources import PODS, Resource
from controlplane.client.resume import ResumePoint, event_key
from controlplane.log import get_logger

log = get_logger(__name__)

REQUESTS = Counter("rest_client_requests_total", "Requests sent to the apiserver, by method and status code",
                   ["code", "method"])

MAX_RETRIES = 10  # client-go's request.go: retries of answers carrying Retry-After
MAX_RETRY_AFTER_S = 10.0
_DISCOVER_DEFAULT = False  # components turn it on for every client of the process (cmd.bootstrap)
KUBERNETES_ENDPOINTS = "/api/v1/namespaces/default/endpoints/kubernetes"


def discover_apiservers_by_default(on: bool = True) -> None:
    """Every ``RestClient`` made after this call discovers the cluster's apiservers (the
    component processes: controllers, scheduler, agent, ...)."""
    global _DISCOVER_DEFAULT
    _DISCOVER_DEFAULT = on

PATCH_TYPES = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
    "apply": "application/apply-patch+yaml",
}


def loads(raw: bytes | str) -> Any:
    """JSON decode: ujson (several times faster), the standard library for what it refuses
    (e.g. integers beyond 64 bits) so results never differ."""
    try:
        return ujson.loads(raw)
    except (ValueError, OverflowError):
        return json.loads(raw)


def dumps(obj: Any) -> bytes:
    """JSON encode (ujson, standard library fallback), UTF-8 bytes."""
    try:
        return ujson.dumps(obj, ensure_ascii=False, escape_forward_slashes=False).encode()
    except (TypeError, OverflowError, ValueError):
        return json.dumps(obj).encode()


_QUOTE_SAFE = "/:@!$&'()*+,;=-._~%"
_PLAIN_PATH = re.compile(r"[A-Za-z0-9/._~:@-]*")  # nothing to quote


class ApiStatusError(Exception):
    """An API failure: HTTP ``code``, Kubernetes ``reason`` and the full ``status`` dict."""

    def __init__(self, code: int, reason: str, message: str, status: dict | None = None) -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.code = code
        self.reason = reason
        self.message = message
        self.status = status or {}

    @property
    def not_found(self) -> bool:
        return self.code == 404

    @property
    def conflict(self) -> bool:
        return self.code == 409 and self.reason == "Conflict"

    @property
    def already_exists(self) -> bool:
        return self.code == 409 and self.reason == "AlreadyExists"

    @property
    def expired(self) -> bool:
        return self.code == 410


def _load_chain(ctx: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    """``SSLContext.load_cert_chain`` reads files only: write both to a private temporary
    directory, load, and remove them at once (no key is left behind on disk)."""
    with tempfile.TemporaryDirectory(prefix="cp-tls-") as d:
        cf, kf = Path(d) / "tls.crt", Path(d) / "tls.key"
        for path, data in ((cf, cert), (kf, key)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        ctx.load_cert_chain(str(cf), str(kf))


def _ssl_from_cluster(cluster: dict, user: dict) -> ssl.SSLContext | bool | None:
    """The TLS settings of a kubeconfig cluster + user: verify the server against
    ``certificate-authority(-data)`` (or the system store), present the user's client
    certificate if any. ``insecure-skip-tls-verify`` is honoured (False: no verification)."""
    ca = cluster.get("certificate-authority-data")
    ctx: ssl.SSLContext | None = None
    if cluster.get("insecure-skip-tls-verify"):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif ca:
        ctx = ssl.create_default_context(cadata=base64.b64decode(ca).decode())
    elif cluster.get("certificate-authority"):
        ctx = ssl.create_default_context(cafile=cluster["certificate-authority"])
    cert, key = user.get("client-certificate-data"), user.get("client-key-data")
    if cert and key:
        cert_b, key_b = base64.b64decode(cert), base64.b64decode(key)
    elif user.get("client-certificate") and user.get("client-key"):
        cert_b, key_b = Path(user["client-certificate"]).read_bytes(), Path(user["client-key"]).read_bytes()
    else:
        cert_b = key_b = b""
    if cert_b and key_b:
        ctx = ctx or ssl.create_default_context()
        _load_chain(ctx, cert_b, key_b)
    if ctx is None and str(cluster.get("server", "")).startswith("https"):
        ctx = ssl.create_default_context()
    return ctx


def kubeconfig_entries(path: str | Path, context: str | None = None) -> tuple[dict, dict]:
    """(cluster, user) entries of a kubeconfig's current (or named) context."""
    cfg = yaml.safe_load(Path(path).read_text()) or {}
    ctx_name = context or cfg.get("current-context")
    contexts = {c["name"]: c.get("context", {}) for c in cfg.get("contexts") or []}
    clusters = {c["name"]: c.get("cluster", {}) for c in cfg.get("clusters") or []}
    users = {u["name"]: u.get("user", {}) or {} for u in cfg.get("users") or []}
    ctx = contexts.get(ctx_name) if ctx_name else None
    if ctx is None:
        if not clusters:
            raise ValueError(f"kubeconfig {path} names no cluster")
        return next(iter(clusters.values())), {}
    return clusters.get(ctx.get("cluster"), {}), users.get(ctx.get("user"), {})


def _kubeconfig_entries(path: str | Path, context: str | None = None) -> tuple[dict, dict]:
    """(cluster, user) of a kubeconfig's current (or named) context; without a context, its
    first cluster and no user. ValueError when it names no cluster at all."""
    cfg = yaml.safe_load(Path(path).read_text()) or {}
    ctx_name = context or cfg.get("current-context")
    contexts = {c["name"]: c.get("context", {}) for c in cfg.get("contexts") or []}
    clusters = {c["name"]: c.get("cluster", {}) for c in cfg.get("clusters") or []}
    users = {u["name"]: u.get("user", {}) or {} for u in cfg.get("users") or []}
    ctx = contexts.get(ctx_name) if ctx_name else None
    if ctx is None:
        if not clusters:
            raise ValueError(f"kubeconfig {path} names no cluster")
        return next(iter(clusters.values())), {}
    return clusters.get(ctx.get("cluster"), {}), users.get(ctx.get("user"), {})


def load_kubeconfig(path: str | Path, context: str | None = None) -> tuple[str, dict[str, str], Any]:
    """(server URL, extra headers, ssl setting) of a kubeconfig's current (or named) context."""
    cluster, user = _kubeconfig_entries(path, context)
    headers: dict[str, str] = {}
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = Path(user["tokenFile"]).read_text().strip()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return cluster["server"].rstrip("/"), headers, _ssl_from_cluster(cluster, user)


def anonymous_config(client: "RestClient") -> tuple[str, Any]:
    """client-go's ``AnonymousClientConfig``: (server URLs, TLS settings) of ``client`` with its
    credentials stripped -- the same servers and server verification, no client certificate
    and no token -- for a client that authenticates some other way (a bearer token of its own:
    ``clientbuilder``). A client not made from a kubeconfig keeps its TLS settings, which
    then carry no client certificate (``--master``)."""
    servers = ",".join(client.balancer.configured)
    if client.kubeconfig is None:
        return servers, client._ssl
    cluster, _ = _kubeconfig_entries(*client.kubeconfig)
    return servers, _ssl_from_cluster(cluster, {})


def kubeconfig_ca_pem(path: str | Path, context: str | None = None) -> bytes | None:
    """The PEM of the current (or named) context's cluster CA (``certificate-authority-data``
    or the ``certificate-authority`` file); None without one."""
    try:
        cluster, _ = _kubeconfig_entries(path, context)
    except ValueError:
        return None
    if cluster.get("certificate-authority-data"):
        return base64.b64decode(cluster["certificate-authority-data"])
    if cluster.get("certificate-authority"):
        try:
            return Path(cluster["certificate-authority"]).read_bytes()
        except OSError:
            return None
    return None


class RestClient:
    """Async client of one apiserver. Create with ``RestClient(base_url)`` or
    ``RestClient.from_kubeconfig(path)``; ``await close()`` when done (or ``async with``)."""

    def __init__(self, base_url: str, *, headers: dict[str, str] | None = None, ssl_ctx: Any = None,
                 user_agent: str = "controlplane", max_connections: int = 64,
                 request_timeout: float = 60.0, lite_http: bool = False, discover: bool | None = None,
                 probe_interval: float = 2.0, discover_interval: float = 15.0) -> None:
        """``lite_http``: send plain requests through ``lite.LitePool`` (a lean keep-alive
        HTTP/1.1 client, several times cheaper in CPU than aiohttp); watches use aiohttp.
        ``base_url`` may list several apiservers separated by commas; ``discover`` (default:
        on in component processes) adds those of ``default/kubernetes`` Endpoints; the
        balancer (``balancer.Balancer``) picks among them."""
        self.balancer = Balancer([u for u in base_url.split(",") if u.strip()], probe_interval=probe_interval,
                                 discover_interval=discover_interval)
        self._discover = _DISCOVER_DEFAULT if discover is None else discover
        self._background: asyncio.Task | None = None
        self._headers = {"User-Agent": user_agent, "Accept": "application/json", **(headers or {})}
        self._ssl = ssl_ctx
        self._max_connections = max_connections
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._session: aiohttp.ClientSession | None = None
        self._lite_http = lite_http
        self._lite: dict[str, LitePool] = {}
        self.kubeconfig: tuple[Path, str | None] | None = None  # where from_kubeconfig read its settings
        self._request_timeout = request_timeout

    def set_bearer_token(self, token: str) -> None:
        """Authenticate every later request with ``Authorization: Bearer <token>`` (a token
        that is replaced before it expires: ``clientbuilder``); open connections keep going."""
        value = f"Bearer {token}"
        self._headers["Authorization"] = value
        if self._session is not None and not self._session.closed:
            self._session.headers["Authorization"] = value
        for pool in self._lite.values():
            pool.set_headers(self._headers)

    @property
    def endpoints(self) -> list[str]:
        return self.balancer.urls

    @property
    def base_url(self) -> str:
        """The apiserver requests go to now."""
        return self.balancer.current

    def _connection_failed(self, url: str) -> None:
        """Mark ``url`` unhealthy; the balancer moves to a healthy endpoint."""
        self.balancer.failed(url)
        pool = self._lite.pop(url, None)
        if pool is not None:
            asyncio.ensure_future(pool.close())

    def _start_background(self) -> None:
        if self._background is None and (self._discover or self.balancer.several):
            self._background = asyncio.ensure_future(self._maintain())

    async def _maintain(self) -> None:
        """Health checks of every endpoint (while there are several) and discovery of the
        published ones (``default/kubernetes`` Endpoints), until ``close``."""
        loop = asyncio.get_running_loop()
        next_discovery = loop.time()
        while True:
            try:
                if self._discover and loop.time() >= next_discovery:
                    next_discovery = loop.time() + self.balancer.discover_interval
                    await self._discover_once()
                if self.balancer.several:
                    await asyncio.gather(*(self._probe(u) for u in list(self.balancer.urls)))
            except Exception as e:  # noqa: BLE001 - the checks go on; requests still fail over passively
                log.warning("apiserver health check round failed", error=str(e))
            await asyncio.sleep(self.balancer.probe_interval if self.balancer.several
                                else max(0.0, next_discovery - loop.time()))

    async def _discover_once(self) -> None:
        try:
            obj = await self.request("GET", KUBERNETES_ENDPOINTS)
        except ApiStatusError as e:
            if e.code not in (403, 404):
                log.info("apiserver discovery failed", error=str(e))
            return
        urls = endpoints_from(obj or {}, scheme_of(self.balancer.configured[0]))
        if urls:
            self.balancer.discovered(urls)

    async def _probe(self, url: str) -> None:
        try:
            async with self.session.get(url + "/readyz", timeout=aiohttp.ClientTimeout(total=2.0)) as resp:
                await resp.read()
                self.balancer.probed(url, resp.status == 200, f"/readyz answered {resp.status}")
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as e:
            self.balancer.probed(url, False, f"/readyz: {type(e).__name__}")

    @classmethod
    def from_kubeconfig(cls, path: str | Path, *, context: str | None = None, **kw: Any) -> "RestClient":
        server, headers, ssl_ctx = load_kubeconfig(path, context)
        client = cls(server, headers=headers, ssl_ctx=ssl_ctx, **kw)
        client.kubeconfig = (Path(path), context)
        return client

    async def __aenter__(self) -> "RestClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            conn = aiohttp.TCPConnector(limit=self._max_connections, ssl=self._ssl if self._ssl is not None else None)
            self._session = aiohttp.ClientSession(connector=conn, headers=self._headers)
        return self._session

    async def close(self) -> None:
        if self._background is not None:
            self._background.cancel()
            await asyncio.gather(self._background, return_exceptions=True)
            self._background = None
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None
        pools, self._lite = list(self._lite.values()), {}
        for pool in pools:
            await pool.close()

    # -- raw requests ---------------------------------------------------------------------

    async def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                      body: Any = None, content_type: str = "application/json",
                      decode: Callable[[bytes], Any] | None = None) -> Any:
        """Send one request; return the decoded JSON body (``decode(raw)`` instead of the
        generic decoder when given: a typed decoder for a hot path), raise ``ApiStatusError``
        on >= 400 (after honouring up to ``MAX_RETRIES`` ``Retry-After`` answers)."""
        send = self._send_lite if self._lite_http else self._send_aiohttp
        if self._background is None:
            self._start_background()
        for attempt in range(MAX_RETRIES + 1):
            url = self.base_url
            tried: list[str] = []
            while True:
                try:
                    status, headers, raw = await send(url, method, path, params, body, content_type)
                    break
                except (aiohttp.ClientConnectionError, LiteConnectionError, OSError, asyncio.TimeoutError) as e:
                    _count("<error>", method)
                    self._connection_failed(url)
                    tried.append(url)
                    # nothing was sent (no connection), or a read: the next apiserver may answer
                    safe = isinstance(e, aiohttp.ClientConnectorError) or getattr(e, "connect", False) or (
                        method == "GET" and not isinstance(e, asyncio.TimeoutError))
                    nxt = next((u for u in self.balancer.others(url) if u not in tried), None) if safe else None
                    if nxt is None:
                        raise ApiStatusError(503, "ServiceUnavailable", f"{method} {path}: {e!r}") from e
                    url = nxt
            self.balancer.succeeded(url)
            _count(str(status), method)
            if status >= 400:
                wait = _retry_after(status, headers)
                if wait is not None and attempt < MAX_RETRIES:
                    await asyncio.sleep(wait)
                    continue
                raise _error_from(status, raw)
            if not raw:
                return None
            if "json" in headers.get("content-type", "") or raw[:1] in (b"{", b"["):
                return loads(raw) if decode is None else decode(raw)
            return raw.decode(errors="replace")
        raise AssertionError("unreachable")

    async def _send_aiohttp(self, base: str, method: str, path: str, params: dict[str, Any] | None, body: Any,
                            content_type: str) -> tuple[int, dict[str, str], bytes]:
        data = None
        headers = {}
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            headers["Content-Type"] = content_type
        clean = {k: _param(v) for k, v in (params or {}).items() if v is not None}
        async with self.session.request(method, base + path, params=clean, data=data,
                                        headers=headers, timeout=self._timeout) as resp:
            raw = await resp.read()
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, raw

    async def _send_lite(self, base: str, method: str, path: str, params: dict[str, Any] | None, body: Any,
                         content_type: str) -> tuple[int, dict[str, str], bytes]:
        data: bytes | None = None
        if body is not None:
            data = body if isinstance(body, bytes) else body.encode() if isinstance(body, str) else dumps(body)
        target = path if _PLAIN_PATH.fullmatch(path) else quote(path, safe=_QUOTE_SAFE)
        if params:
            clean = {k: _param(v) for k, v in params.items() if v is not None}
            if clean:
                target += "?" + urlencode(clean)
        pool = self._lite.get(base)
        if pool is None:
            pool = self._lite[base] = LitePool(base, self._headers, self._ssl, self._max_connections,
                                               self._request_timeout)
        return await pool.request(method, target, data, content_type if data is not None else None)

    # -- verbs ----------------------------------------------------------------------------

    async def get(self, res: Resource, name: str, namespace: str | None = None, *,
                  subresource: str | None = None) -> dict:
        return await self.request("GET", res.path(namespace, name, subresource))

    async def list(self, res: Resource, namespace: str | None = None, *, label_selector: str | None = None,
                   field_selector: str | None = None, limit: int | None = None, continue_: str | None = None,
                   resource_version: str | None = None) -> dict:
        """One page of a list (``items``, ``metadata.resourceVersion``, ``metadata.continue``)."""
        return await self.request("GET", res.path(namespace), params={
            "labelSelector": label_selector, "fieldSelector": field_selector, "limit": limit,
            "continue": continue_, "resourceVersion": resource_version})

    async def list_all(self, res: Resource, namespace: str | None = None, *, label_selector: str | None = None,
                       field_selector: str | None = None, page_size: int = 500) -> dict:
        """All pages of a list merged into one; the resourceVersion is the first page's."""
        first = await self.list(res, namespace, label_selector=label_selector, field_selector=field_selector, limit=page_size)
        items = list(first.get("items") or [])
        cont = (first.get("metadata") or {}).get("continue")
        while cont:
            page = await self.list(res, namespace, label_selector=label_selector, field_selector=field_selector,
                                   limit=page_size, continue_=cont)
            items.extend(page.get("items") or [])
            cont = (page.get("metadata") or {}).get("continue")
        first["items"] = items
        first.setdefault("metadata", {}).pop("continue", None)
        return first

    async def create(self, res: Resource, obj: dict, namespace: str | None = None) -> dict:
        ns = namespace or (obj.get("metadata") or {}).get("namespace")
        return await self.request("POST", res.path(ns), body=obj)

    async def update(self, res: Resource, obj: dict, *, subresource: str | None = None) -> dict:
        """PUT the whole object (optimistic concurrency through ``metadata.resourceVersion``)."""
        md = obj["metadata"]
        return await self.request("PUT", res.path(md.get("namespace"), md["name"], subresource), body=obj)

    async def update_status(self, res: Resource, obj: dict) -> dict:
        return await self.update(res, obj, subresource="status")

    async def patch(self, res: Resource, name: str, body: Any, namespace: str | None = None, *,
                    patch_type: str = "merge", subresource: str | None = None,
                    field_manager: str | None = None, force: bool | None = None) -> dict:
        """PATCH with ``patch_type`` one of merge, strategic, json, apply."""
        params: dict[str, Any] = {"fieldManager": field_manager, "force": force}
        return await self.request("PATCH", res.path(namespace, name, subresource), params=params,
                                  body=body, content_type=PATCH_TYPES[patch_type])

    async def delete(self, res: Resource, name: str, namespace: str | None = None, *,
                     propagation_policy: str | None = None, preconditions: dict | None = None,
                     grace_period_seconds: int | None = None) -> Any:
        opts: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation_policy:
            opts["propagationPolicy"] = propagation_policy
        if preconditions:
            opts["preconditions"] = preconditions
        if grace_period_seconds is not None:
            opts["gracePeriodSeconds"] = grace_period_seconds
        return await self.request("DELETE", res.path(namespace, name), body=opts)

    async def delete_collection(self, res: Resource, namespace: str | None = None, *,
                                label_selector: str | None = None, propagation_policy: str | None = None) -> Any:
        body = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation_policy:
            body["propagationPolicy"] = propagation_policy
        return await self.request("DELETE", res.path(namespace), params={"labelSelector": label_selector}, body=body)

    async def bind(self, namespace: str, pod_name: str, node_name: str,
                   annotations: dict[str, str] | None = None) -> Any:
        """POST a ``Binding`` to ``pods/NAME/binding`` (what the scheduler does), with the
        Binding's ``annotations`` if given."""
        md: dict[str, Any] = {"name": pod_name, "namespace": namespace}
        if annotations:
            md["annotations"] = annotations
        body = {"apiVersion": "v1", "kind": "Binding", "metadata": md,
                "target": {"apiVersion": "v1", "kind": "Node", "name": node_name}}
        return await self.request("POST", PODS.path(namespace, pod_name, "binding"), body=body)

    async def scale(self, res: Resource, name: str, replicas: int, namespace: str | None = None) -> dict:
        """Set ``spec.replicas`` through the ``scale`` subresource (merge patch, like kubectl)."""
        return await self.patch(res, name, {"spec": {"replicas": replicas}}, namespace, subresource="scale")

    async def discover(self) -> list[tuple[str, dict]]:
        """(groupVersion, APIResource entry) for every resource in legacy discovery."""
        out: list[tuple[str, dict]] = []
        gvs: list[str] = []
        core = await self.request("GET", "/api")
        gvs += list(core.get("versions") or ["v1"])
        groups = await self.request("GET", "/apis")
        for g in groups.get("groups") or []:
            pv = g.get("preferredVersion") or (g.get("versions") or [{}])[0]
            if pv.get("groupVersion"):
                gvs.append(pv["groupVersion"])
        for gv in gvs:
            path = f"/api/{gv}" if "/" not in gv else f"/apis/{gv}"
            try:
                lst = await self.request("GET", path)
            except ApiStatusError as e:
                log.warning("discovery failed", group_version=gv, error=str(e))
                continue
            out += [(gv, r) for r in lst.get("resources") or []]
        return out

    # -- watch ----------------------------------------------------------------------------

    async def watch(self, res: Resource, namespace: str | None = None, *, resource_version: str | None = None,
                    label_selector: str | None = None, field_selector: str | None = None,
                    timeout_seconds: int | None = None, allow_bookmarks: bool = True,
                    resume: bool = False, stop: asyncio.Event | None = None) -> AsyncIterator[tuple[str, dict]]:
        """Yield ``(type, object)`` events (ADDED, MODIFIED, DELETED, BOOKMARK).

        With ``resume=True`` a stream that ends or drops is reopened from the last
        resourceVersion known complete (bookmarks included; ``resume.ResumePoint``: writes the
        apiserver commits together share one) until ``stop`` is set, and an event the broken
        stream had already delivered is not yielded again. An ERROR event with
        code 410 (or a 410 response) raises ``ApiStatusError`` so the caller relists; other
        ERROR events raise too."""
        point = ResumePoint(resource_version)
        while True:
            params = {"watch": "true", "resourceVersion": point.rv if resume else resource_version,
                      "labelSelector": label_selector,
                      "fieldSelector": field_selector, "timeoutSeconds": timeout_seconds,
                      "allowWatchBookmarks": "true" if allow_bookmarks else None}
            try:
                async for etype, obj in self._watch_once(res.path(namespace), params):
                    if etype == "ERROR":
                        raise ApiStatusError(int(obj.get("code") or 500), obj.get("reason", "Unknown"),
                                             obj.get("message", ""), obj)
                    if resume:
                        new_rv = (obj.get("metadata") or {}).get("resourceVersion")
                        if etype == "BOOKMARK":
                            point.bookmark(new_rv)
                        elif not point.event(new_rv, event_key(obj)):
                            continue  # the broken stream had delivered it
                    yield etype, obj
            except ApiStatusError as e:
                if not resume or e.code not in (500, 503, 504):
                    raise
                log.info("watch dropped, resuming", path=res.path(namespace), rv=point.rv, error=str(e))
                await asyncio.sleep(0.5)
            if not resume or (stop is not None and stop.is_set()):
                return

    async def _watch_once(self, path: str, params: dict[str, Any]) -> AsyncIterator[tuple[str, dict]]:
        clean = {k: _param(v) for k, v in params.items() if v is not None}
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=None)
        if self._background is None:
            self._start_background()
        url = self.base_url
        try:
            async with self.session.get(url + path, params=clean, timeout=timeout) as resp:
                if resp.status >= 400:
                    raise _error_from(resp.status, await resp.read())
                buf = b""
                async for chunk in resp.content.iter_any():
                    if b"\n" not in chunk:
                        buf += chunk
                        continue
                    lines = (buf + chunk).split(b"\n")  # one pass, however many events a chunk holds
                    buf = lines.pop()
                    for line in lines:
                        if line.strip():
                            ev = loads(line)
                            yield ev.get("type", ""), ev.get("object") or {}
                if buf.strip():
                    ev = loads(buf)
                    yield ev.get("type", ""), ev.get("object") or {}
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, asyncio.TimeoutError) as e:
            if isinstance(e, aiohttp.ClientConnectorError):
                self._connection_failed(url)
            raise ApiStatusError(503, "ServiceUnavailable", f"watch {path}: {e!r}") from e


_COUNTERS: dict[tuple[str, str], Any] = {}


def _count(code: str, method: str) -> None:
    c = _COUNTERS.get((code, method))
    if c is None:
        c = _COUNTERS[(code, method)] = REQUESTS.labels(code, method)
    c.inc()


def _retry_after(status: int, headers: dict[str, str]) -> float | None:
    """Seconds to wait before retrying an answer, or None when it must not be retried: only
    429 and 5xx answers carrying ``Retry-After`` (client-go's ``checkWait``)."""
    if status != 429 and status < 500:
        return None
    v = headers.get("retry-after")
    if v is None:
        return None
    try:
        return min(MAX_RETRY_AFTER_S, max(0.0, float(v)))
    except ValueError:
        return None


def _param(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _error_from(code: int, raw: bytes) -> ApiStatusError:
    try:
        st = loads(raw)
    except ValueError:
        st = None
    if isinstance(st, dict) and st.get("kind") == "Status":
        return ApiStatusError(int(st.get("code") or code), st.get("reason") or "Unknown", st.get("message", ""), st)
    return ApiStatusError(code, "Unknown", raw.decode(errors="replace")[:500])
