"""The ``pods/proxy``, ``services/proxy`` and ``nodes/proxy`` subresources: HTTP requests
proxied through the apiserver (``kubectl proxy``, ``kubectl get --raw .../proxy/...``).

URL forms, as Kubernetes parses them (``SplitSchemeNamePort``):
``/api/v1/namespaces/NS/pods/[SCHEME:]NAME[:PORT]/proxy/PATH``,
``/api/v1/namespaces/NS/services/[SCHEME:]NAME[:PORTNAME|PORT]/proxy/PATH`` and
``/api/v1/nodes/NAME[:PORT]/proxy/PATH``; SCHEME is ``http`` or ``https``.

- A pod: PORT, else the first ``containerPort`` of its containers, else 80 (kube-apiserver's
  ``ResourceLocation``).
- A Service: a numeric PORT names the Service port with that number (503 ``no service port N
  found for service "web"`` otherwise); the Endpoints object of the Service (404 when there
  is none; 503 ``no endpoints available for service "web"`` when it lists no ready address)
  gives a random ready address with that port name, which must be a pod (``targetRef``) that
  exists with that IP, as Kubernetes checks.
- Pods (and so Services) are reached through their node's agent (``podtunnel.py``: the agent
  dials the pod's IP inside its network namespace); the HTTP request goes over that
  connection with h11 (python-hyper's HTTP/1.1 state machine), inside TLS for ``https:``
  (the certificate not verified, as kube-apiserver's proxy transport), the answer streams
  back. A refused port is 503 ``error trying to reach service: dial tcp IP:PORT: connect:
  connection refused``.
- A node: its agent's HTTPS endpoint with the apiserver's kubelet client certificate (the
  agent's ``/healthz``, ``/metrics``, ``/stats/summary``, ``/containerLogs/...``, ``/pods``).
  Another port of the node is proxied only when the node's address is not loopback or
  link-local (kube-apiserver's ``IsProxyableHostname``), without the kubelet certificate.

As Kubernetes does, the request's ``Authorization`` and ``Impersonate-*`` headers never leave
the apiserver, hop-by-hop headers are dropped, ``X-Forwarded-For`` is added, an empty PATH on
GET/HEAD is redirected (301) to ``.../proxy/``, and a redirect's ``Location`` on the proxied
host is rewritten under the proxy path, and so are the links of an HTML page
(``htmlrewrite.py``); the backend's CORS headers are dropped and ``X-Forwarded-Uri`` added
(kube-apiserver's proxy transport). A protocol upgrade (``Connection: Upgrade``, a
WebSocket for instance) keeps its ``Upgrade`` header; when the backend answers 101 it is passed
on and the bytes are copied both ways (kube-apiserver's ``UpgradeAwareHandler``); for nodes the
upgrade goes over a connection of our own to the agent (``StreamTunnel``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import ssl
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import h11
from sanic import Request, Sanic
from sanic.response import HTTPResponse, empty

from controlplane.apiserver.admission import connect as connect_admission
from controlplane.apiserver.endpoints import htmlrewrite, nodeagent, upgrade
from controlplane.apiserver.endpoints.common import Api
from controlplane.apiserver.endpoints.podtunnel import PodTunnel, TLSTunnel, Tunnel, TunnelError
from controlplane.apiserver.meta import errors
from controlplane.log import get_logger

log = get_logger(__name__)
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
              "trailers", "transfer-encoding", "upgrade", "proxy-connection"}
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


def split_scheme_name_port(id_: str) -> tuple[str, str, str] | None:
    """Kubernetes' ``SplitSchemeNamePort``: ``[scheme:]name[:port]``; None when invalid."""
    parts = id_.split(":")
    if len(parts) == 1:
        scheme, name, port = "", parts[0], ""
    elif len(parts) == 2:
        scheme, name, port = "", parts[0], parts[1]
    elif len(parts) == 3:
        scheme, name, port = parts
    else:
        return None
    return (scheme, name, port) if name and scheme in ("", "http", "https") else None


def proxy_split(path: str, marker_index: int) -> tuple[str, str]:
    """(proxy prefix, rest) of a raw request path whose ``marker_index``-th segment is
    ``proxy``: ``/api/v1/namespaces/x/pods/web:80/proxy/a/b`` -> (``.../proxy``, ``/a/b``)."""
    parts = path.split("/")
    prefix = "/".join(parts[:marker_index + 1])
    return prefix, path[len(prefix):]


# -- where a request goes ---------------------------------------------------------------------
async def pod_location(api: Api, namespace: str, id_: str) -> tuple[dict[str, Any], int, str]:
    """(pod, port, scheme) of a pods/proxy request."""
    split = split_scheme_name_port(id_)
    if split is None:
        raise errors.bad_request(f'invalid pod request "{id_}"')
    scheme, name, port = split
    pod = await nodeagent.get_pod(api, namespace, name)
    if not port:
        for c in (pod.get("spec") or {}).get("containers") or []:
            if c.get("ports"):
                port = str(c["ports"][0]["containerPort"])
                break
    if not (pod.get("status") or {}).get("podIP"):
        raise errors.bad_request("address not allowed")
    if not port:
        return pod, 443 if scheme == "https" else 80, scheme
    if not port.isdigit() or not 0 < int(port) < 65536:
        ip = pod["status"]["podIP"]
        raise errors.ApiError(503, "ServiceUnavailable", f"error trying to reach service: dial tcp {ip}:{port}: unknown port")
    return pod, int(port), scheme


async def service_location(api: Api, namespace: str, id_: str) -> tuple[dict[str, Any], int, str]:
    """(pod, port, scheme) of a services/proxy request: a ready endpoint of the Service port."""
    split = split_scheme_name_port(id_)
    if split is None:
        raise errors.bad_request(f'invalid service request "{id_}"')
    scheme, name, port_str = split
    svc = await nodeagent.get_object(api, "services", namespace, name)
    if svc is None:
        raise nodeagent.not_found("services", name)
    if port_str.isdigit():
        num = int(port_str)
        match = next((p for p in (svc.get("spec") or {}).get("ports") or [] if p.get("port") == num), None)
        if match is None:
            raise errors.ApiError(503, "ServiceUnavailable", f'no service port {num} found for service "{name}"')
        port_str = match.get("name") or ""
    eps = await nodeagent.get_object(api, "endpoints", namespace, name)
    if eps is None:
        raise nodeagent.not_found("endpoints", name)
    subsets = eps.get("subsets") or []
    if not subsets:
        raise errors.ApiError(503, "ServiceUnavailable", f'no endpoints available for service "{name}"')
    seed = random.randrange(len(subsets))
    for k in range(len(subsets)):
        ss = subsets[(seed + k) % len(subsets)]
        addrs = ss.get("addresses") or []
        if not addrs:
            continue
        for p in ss.get("ports") or []:
            if (p.get("name") or "") != port_str:
                continue
            a0 = random.randrange(len(addrs))
            for t in range(len(addrs)):
                addr = addrs[(a0 + t) % len(addrs)]
                pod = await _endpoint_pod(api, namespace, addr)
                if pod is not None:
                    return pod, int(p["port"]), scheme
            log.info("no valid address in an Endpoints subset", service=name, namespace=namespace)
    raise errors.ApiError(503, "ServiceUnavailable", f'no endpoints available for service "{id_}"')


async def _endpoint_pod(api: Api, namespace: str, addr: dict[str, Any]) -> dict[str, Any] | None:
    """The pod behind an endpoint address, if it is one that exists with that IP
    (kube-apiserver's ``isValidAddress``)."""
    ref = addr.get("targetRef") or {}
    if ref.get("kind") != "Pod":
        return None
    pod = await nodeagent.get_object(api, "pods", ref.get("namespace") or namespace, ref.get("name") or "")
    if pod is None:
        return None
    st = pod.get("status") or {}
    ips = {st.get("podIP")} | {x.get("ip") for x in st.get("podIPs") or []}
    return pod if addr.get("ip") in ips else None


def is_upgrade(headers: Any) -> bool:
    """A protocol upgrade (WebSocket, SPDY, ...): ``Connection: Upgrade`` and ``Upgrade``
    (``headers``: a case-insensitive mapping, as a request's)."""
    tokens = {t.strip().lower() for t in (headers.get("connection") or "").split(",")}
    return "upgrade" in tokens and bool(headers.get("upgrade"))


def _forward_headers(request: Request) -> list[tuple[str, str]]:
    upgrading = is_upgrade(request.headers)
    out = []
    for k, v in request.headers.items():
        lk = k.lower()
        if upgrading and lk == "upgrade":
            out.append((k, v))
            continue
        if lk in HOP_BY_HOP or lk == "authorization" or lk.startswith("impersonate-") or lk == "content-length":
            continue
        out.append((k, v))
    if upgrading:
        out.append(("Connection", "Upgrade"))
    prior = request.headers.get("x-forwarded-for")
    if request.ip:
        out = [(k, v) for k, v in out if k.lower() != "x-forwarded-for"]
        out.append(("X-Forwarded-For", f"{prior}, {request.ip}" if prior else request.ip))
    return out


def _response_headers(headers: Any, prefix: str, upstream_host: str, request_host: str = "") -> list[tuple[str, str]]:
    """The backend's answer headers as the client gets them: hop-by-hop and CORS ones dropped,
    ``Location`` under the proxy path by the rules links follow (``htmlrewrite.rewrite_url``)."""
    out = []
    for k, v in headers:
        k = k.decode("latin-1") if isinstance(k, bytes) else k
        v = v.decode("latin-1") if isinstance(v, bytes) else v
        lk = k.lower()
        if lk in HOP_BY_HOP or lk == "content-length" or lk in htmlrewrite.CORS_HEADERS:
            continue  # (kube-apiserver's corsRemovingTransport drops the backend's CORS answers)
        if lk == "location":
            v = htmlrewrite.rewrite_url(v, prefix, upstream_host, request_host)
        out.append((k, v))
    return out


def _with_forwarded_uri(headers: list[tuple[str, str]], prefix: str, path: str) -> list[tuple[str, str]]:
    """``X-Forwarded-Uri``: the path the client asked for (kube-apiserver's proxy transport)."""
    return [(k, v) for k, v in headers if k.lower() != "x-forwarded-uri"] + [
        ("X-Forwarded-Uri", htmlrewrite.go_join(prefix, path or "/"))]


class _Body:
    """Where a proxied answer's body goes: straight to the client, or, for an HTML page
    (``text/html``, not a redirect), collected and sent with its links rewritten."""

    def __init__(self, request: Request, resp: Any, hdrs: list[tuple[str, str]], ctype: str | None, prefix: str,
                 source_host: str) -> None:
        self.resp = resp
        kind = (ctype or "").split(";", 1)[0].strip().lower()
        names = {k.lower(): v for k, v in hdrs}
        self.buf: bytearray | None = bytearray() if kind == "text/html" and "location" not in names else None
        self.encoding = names.get("content-encoding", "")
        self.args = (prefix, source_host, request.headers.get("host") or "")

    async def send(self, data: bytes) -> None:
        if self.buf is not None:
            self.buf += data
        else:
            await self.resp.send(data)

    async def end(self) -> None:
        if self.buf is not None:
            body = htmlrewrite.rewrite_body(bytes(self.buf), self.encoding, *self.args)
            await self.resp.send(bytes(self.buf) if body is None else body)
        await self.resp.eof()


def _redirect_to_slash(request: Request) -> HTTPResponse:
    q = f"?{request.query_string}" if request.query_string else ""
    return empty(status=301, headers={"Location": request.path + "/" + q})


# -- proxying over a tunnel (pods, services) --------------------------------------------------
async def _http_over_tunnel(request: Request, c: nodeagent.Connect, tunnel: Tunnel, path: str,
                            prefix: str) -> None:
    conn = h11.Connection(our_role=h11.CLIENT)
    headers = _forward_headers(request)
    if not any(k.lower() == "host" for k, _ in headers):
        headers.append(("Host", tunnel.target))
    body = request.body or b""
    if body or request.method in ("POST", "PUT", "PATCH"):
        headers.append(("Content-Length", str(len(body))))
    upgrading = is_upgrade(request.headers)
    if not upgrading:
        headers.append(("Connection", "close"))
    headers = _with_forwarded_uri(headers, prefix, path)
    target = path + (f"?{request.query_string}" if request.query_string else "")
    try:
        out = conn.send(h11.Request(method=request.method, target=target, headers=headers))
        if body:
            out += conn.send(h11.Data(data=body))
        out += conn.send(h11.EndOfMessage())
    except h11.LocalProtocolError as e:
        await c.error(errors.bad_request(f"cannot proxy this request: {e}"))
        return
    resp = None
    try:
        await tunnel.send(out)
        while True:
            ev = conn.next_event()
            if ev is h11.NEED_DATA:
                conn.receive_data(await tunnel.recv())
                continue
            if isinstance(ev, h11.InformationalResponse):
                if upgrading and ev.status_code == 101:
                    await _switch(request, c, tunnel, ev, bytes(conn.trailing_data[0]), prefix)
                    return
                continue
            if isinstance(ev, h11.Response):
                break
            raise h11.RemoteProtocolError("connection closed before a response")
    except TunnelError as e:
        await c.error(errors.ApiError(503, "ServiceUnavailable", f"error trying to reach service: {e}"))
        return
    except (h11.RemoteProtocolError, aiohttp.ClientError, ConnectionError) as e:
        await c.error(errors.ApiError(503, "ServiceUnavailable", f"error trying to reach service: {e}"))
        return
    hdrs = _response_headers(ev.headers, prefix, tunnel.target, request.headers.get("host") or "")
    ctype = next((v for k, v in hdrs if k.lower() == "content-type"), None)
    hdrs = [(k, v) for k, v in hdrs if k.lower() != "content-type"]
    c.code = ev.status_code
    out_body = _Body(request, await request.respond(status=ev.status_code, headers=hdrs, content_type=ctype),
                     hdrs, ctype, prefix, tunnel.target)
    try:
        while True:
            ev = conn.next_event()
            if ev is h11.NEED_DATA:
                conn.receive_data(await tunnel.recv())
            elif isinstance(ev, h11.Data):
                await out_body.send(bytes(ev.data))
            else:
                break
    except (h11.RemoteProtocolError, TunnelError, aiohttp.ClientError, ConnectionError) as e:
        log.info("proxied response cut short", error=str(e))
    await out_body.end()


async def _switch(request: Request, c: nodeagent.Connect, tunnel: Tunnel, ev: h11.InformationalResponse,
                  early: bytes, prefix: str) -> None:
    """The backend switched protocols: pass its 101 on, then copy bytes both ways until either
    side ends (kube-apiserver's ``UpgradeAwareHandler``)."""
    hdrs = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in ev.headers.raw_items()]  # the backend's casing
    hdrs = [(k, v) for k, v in hdrs if k.lower() in ("connection", "upgrade") or k.lower() not in HOP_BY_HOP]
    hdrs = _response_headers(hdrs, prefix, tunnel.target, request.headers.get("host") or "") \
        if any(k.lower() == "location" for k, _ in hdrs) else hdrs
    reason = ev.reason.decode("latin-1") if ev.reason else "Switching Protocols"
    raw = upgrade.hijack(request, f"101 {reason}", hdrs)
    c.upgraded()
    try:
        if early:
            await raw.send(early)

        async def up() -> None:
            while (data := await raw.recv()) is not None:
                await tunnel.send(data)

        async def down() -> None:
            while data := await tunnel.recv():
                await raw.send(data)

        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(up()), loop.create_task(down())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        raw.end_connection()


class StreamTunnel:
    """A plain TCP (or TLS) connection as a ``Tunnel`` (nodes/proxy upgrades to an agent)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, target: str) -> None:
        self.reader, self.writer, self.target = reader, writer, target

    @classmethod
    async def open(cls, url: str, ssl_ctx: Any) -> StreamTunnel:
        u = urlsplit(url)
        port = u.port or (443 if u.scheme == "https" else 80)
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(
                u.hostname, port, ssl=ssl_ctx if u.scheme == "https" else None), 10)
        except (OSError, asyncio.TimeoutError, ssl.SSLError) as e:
            raise TunnelError(f"dial tcp {u.hostname}:{port}: {e}") from e
        return cls(reader, writer, f"{u.hostname}:{port}")

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def recv(self) -> bytes:
        try:
            return await self.reader.read(65536)
        except (OSError, ssl.SSLError):
            return b""

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (OSError, ssl.SSLError):
            pass


async def _to_pod(request: Request, c: nodeagent.Connect, pod: dict[str, Any], port: int, scheme: str, rest: str,
                  prefix: str) -> None:
    try:
        tunnel: Tunnel = await PodTunnel.open(request.app.ctx.api, pod, port)
    except TunnelError as e:
        await c.error(errors.ApiError(503, "ServiceUnavailable", f"error trying to reach service: {e}"))
        return
    try:
        if scheme == "https":
            tunnel = TLSTunnel(tunnel)
            try:
                await tunnel.handshake()
            except TunnelError as e:
                await c.error(errors.ApiError(503, "ServiceUnavailable", f"error trying to reach service: {e}"))
                return
        await _http_over_tunnel(request, c, tunnel, rest or "/", prefix)
    finally:
        await tunnel.close()


async def pod_proxy(request: Request, namespace: str, name: str, path: str = "") -> None:
    api: Api = request.app.ctx.api
    c = nodeagent.Connect(api, request, "pods", "proxy")
    try:
        prefix, rest = proxy_split(request.path, 7)
        if not rest and request.method in ("GET", "HEAD"):
            await c.reply(_redirect_to_slash(request))
            return
        pod, port, scheme = await pod_location(api, namespace, name)
        await connect_admission.admit(api, api.registry.get("", "v1", "pods"), namespace, name, "proxy", {"path": rest})  # type: ignore[arg-type]
        await _to_pod(request, c, pod, port, scheme, rest, prefix)
    except errors.ApiError as e:
        await c.error(e)
    finally:
        c.done()


async def service_proxy(request: Request, namespace: str, name: str, path: str = "") -> None:
    api: Api = request.app.ctx.api
    c = nodeagent.Connect(api, request, "services", "proxy")
    try:
        prefix, rest = proxy_split(request.path, 7)
        if not rest and request.method in ("GET", "HEAD"):
            await c.reply(_redirect_to_slash(request))
            return
        pod, port, scheme = await service_location(api, namespace, name)
        await connect_admission.admit(api, api.registry.get("", "v1", "services"), namespace, name, "proxy", {"path": rest})  # type: ignore[arg-type]
        await _to_pod(request, c, pod, port, scheme, rest, prefix)
    except errors.ApiError as e:
        await c.error(e)
    finally:
        c.done()


# -- nodes ------------------------------------------------------------------------------------
def _proxyable(host: str) -> bool:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return True
    return not (ip.is_loopback or ip.is_link_local or ip.is_unspecified)


async def node_proxy(request: Request, name: str, path: str = "") -> None:
    api: Api = request.app.ctx.api
    c = nodeagent.Connect(api, request, "nodes", "proxy")
    try:
        prefix, rest = proxy_split(request.path, 5)
        split = split_scheme_name_port(name)
        if split is None:
            raise errors.bad_request(f'invalid node request "{name}"')
        scheme, node_name, port = split
        node = await nodeagent.get_object(api, "nodes", None, node_name)
        if node is None:
            raise nodeagent.not_found("nodes", node_name)
        if not rest and request.method in ("GET", "HEAD"):
            await c.reply(_redirect_to_slash(request))
            return
        addr, agent_port = nodeagent.node_address(node)
        if not agent_port:
            raise errors.ApiError(503, "ServiceUnavailable", f"node {node_name} has no agent endpoint")
        await connect_admission.admit(api, api.registry.get("", "v1", "nodes"), None, node_name, "proxy", {"path": rest})  # type: ignore[arg-type]
        if not port or port == str(agent_port):
            base, ssl_ctx = await nodeagent.agent_base(api, node_name), api.kubelet_ssl
        else:
            if not addr or not _proxyable(addr):
                raise errors.bad_request("address not allowed")
            base, ssl_ctx = f"{scheme or 'http'}://{addr}:{port}", None
        if is_upgrade(request.headers):
            await _upgrade_to_url(request, c, base + rest, ssl_ctx, prefix)
            return
        await _to_url(request, c, base + rest + (f"?{request.query_string}" if request.query_string else ""),
                      ssl_ctx, prefix)
    except errors.ApiError as e:
        await c.error(e)
    finally:
        c.done()


async def _upgrade_to_url(request: Request, c: nodeagent.Connect, url: str, ssl_ctx: Any, prefix: str) -> None:
    """An upgrade through nodes/proxy: HTTP/1.1 over our own connection, so that it can switch."""
    try:
        tunnel = await StreamTunnel.open(url, ssl_ctx if ssl_ctx is not None else _insecure_tls())
    except TunnelError as e:
        await c.error(errors.ApiError(503, "ServiceUnavailable", f"error trying to reach service: {e}"))
        return
    try:
        await _http_over_tunnel(request, c, tunnel, urlsplit(url).path or "/", prefix)
    finally:
        await tunnel.close()


def _insecure_tls() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def _to_url(request: Request, c: nodeagent.Connect, url: str, ssl_ctx: Any, prefix: str) -> None:
    headers = [(k, v) for k, v in _forward_headers(request) if k.lower() != "host"]
    headers = _with_forwarded_uri(headers, prefix, urlsplit(url).path)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
    conn = aiohttp.TCPConnector(ssl=ssl_ctx) if ssl_ctx is not None else None
    async with aiohttp.ClientSession(timeout=timeout, connector=conn, auto_decompress=False) as s:
        try:
            async with s.request(request.method, url, headers=headers, data=request.body or None,
                                 allow_redirects=False) as r:
                hdrs = _response_headers(r.raw_headers, prefix, urlsplit(url).netloc, request.headers.get("host") or "")
                ctype = next((v for k, v in hdrs if k.lower() == "content-type"), None)
                hdrs = [(k, v) for k, v in hdrs if k.lower() != "content-type"]
                c.code = r.status
                out_body = _Body(request, await request.respond(status=r.status, headers=hdrs, content_type=ctype),
                                 hdrs, ctype, prefix, urlsplit(url).netloc)
                async for chunk in r.content.iter_any():
                    await out_body.send(chunk)
                await out_body.end()
        except (aiohttp.ClientError, OSError) as e:
            if c.code:
                log.info("proxied response cut short", error=str(e))
                return
            await c.error(errors.ApiError(503, "ServiceUnavailable", f"error trying to reach service: {e}"))


def install(app: Sanic) -> None:
    ns = "/api/v1/namespaces/<namespace>"
    for handler, base, key in ((pod_proxy, f"{ns}/pods/<name>/proxy", "pod"),
                               (service_proxy, f"{ns}/services/<name>/proxy", "service"),
                               (node_proxy, "/api/v1/nodes/<name>/proxy", "node")):
        app.add_route(handler, base, methods=METHODS, name=f"{key}_proxy_root", strict_slashes=True)
        app.add_route(handler, base + "/<path:path>", methods=METHODS, name=f"{key}_proxy")
