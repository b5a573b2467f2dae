"""Proxying ``pods/X/log``, ``pods/X/exec`` and ``nodes/X/proxy/...`` from the apiserver to the
node agent (what the kube-apiserver does with the kubelet's port).

The pod names its node; the Node's ``status.addresses`` (InternalIP) and
``status.daemonEndpoints.kubeletEndpoint.Port`` say where its agent listens. The apiserver
connects over HTTPS with its ``kube-apiserver-kubelet-client`` certificate
(``--kubelet-client-certificate``; the agent authorizes it through a SubjectAccessReview on
``nodes/proxy``) and verifies the agent's serving certificate against
``--kubelet-certificate-authority`` (``api.kubelet_ssl``); without those flags it speaks plain
HTTP (development). The caller was already authorized for ``pods/log`` / ``pods/exec`` by the
server's filters; the exec stream is audited when it starts and when it ends.
Logs stream through (``follow``, ``previous``, ``tailLines``, ``sinceSeconds``/``sinceTime``,
``timestamps``, ``limitBytes``, ``container``); exec is a WebSocket relay speaking the
``v5``/``v4.channel.k8s.io`` subprotocols kubectl 1.32 offers.

Wiring: ``server/routes.build_app`` calls ``install(app)`` (these routes are more specific
than the catch-all ``/api/<path>``). ``nodes/X/proxy/<path>`` forwards any request to the
node's agent (``kubectl get --raw /api/v1/nodes/X/proxy/metrics``). Port-forward, attach and
the pods/services proxy belong here too (docs/architecture.md, "Homes").
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlencode

import aiohttp
from sanic import Request, Sanic
from sanic.response import HTTPResponse

from controlplane.apiserver.endpoints.common import Api, status_response
from controlplane.apiserver.meta import errors
from controlplane.log import get_logger

log = get_logger(__name__)
SUBPROTOCOLS = ["v5.channel.k8s.io", "v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"]
LOG_PARAMS = ("follow", "previous", "tailLines", "sinceSeconds", "sinceTime", "timestamps", "limitBytes")


async def _get(api: Api, plural: str, namespace: str | None, name: str) -> dict[str, Any] | None:
    info = api.registry.get("", "v1", plural)
    assert info is not None
    return await api.store.get_or_none(info, namespace, name)


async def locate(api: Api, namespace: str, name: str, container: str | None) -> tuple[str, str]:
    """(agent base URL, container name) for a pod; raises ``ApiError`` as Kubernetes words it."""
    pod = await _get(api, "pods", namespace, name)
    if pod is None:
        raise errors.ApiError(404, "NotFound", f'pods "{name}" not found', details={"name": name, "kind": "pods"})
    spec = pod.get("spec") or {}
    names = [c["name"] for c in spec.get("containers") or []]
    all_names = names + [c["name"] for c in spec.get("initContainers") or []]
    if not container:
        if len(names) != 1:
            raise errors.ApiError(400, "BadRequest", f"a container name must be specified for pod {name}, "
                                                     f"choose one of: [{' '.join(names)}]")
        container = names[0]
    elif container not in all_names:
        raise errors.ApiError(400, "BadRequest", f"container {container} is not valid for pod {name}")
    node_name = spec.get("nodeName")
    if not node_name:
        raise errors.ApiError(400, "BadRequest", f"pod {name} does not have a host assigned")
    node = await _get(api, "nodes", None, node_name)
    if node is None:
        raise errors.ApiError(404, "NotFound", f'nodes "{node_name}" not found')
    st = node.get("status") or {}
    addr = next((a["address"] for a in st.get("addresses") or [] if a.get("type") == "InternalIP"), "127.0.0.1")
    port = ((st.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
    if not port:
        raise errors.ApiError(503, "ServiceUnavailable", f"node {node_name} has no agent endpoint")
    scheme = "https" if api.kubelet_ssl is not None else "http"
    return f"{scheme}://{addr}:{port}", container


async def pod_log(request: Request, namespace: str, name: str) -> HTTPResponse | None:
    api: Api = request.app.ctx.api
    try:
        base, container = await locate(api, namespace, name, request.args.get("container"))
    except errors.ApiError as e:
        return status_response(e)
    q = {k: request.args.get(k) for k in LOG_PARAMS if request.args.get(k) is not None}
    url = f"{base}/containerLogs/{namespace}/{name}/{container}?{urlencode(q)}"
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=5)
    async with aiohttp.ClientSession(timeout=timeout, connector=_connector(api)) as s:
        try:
            async with s.get(url) as r:
                if r.status != 200:
                    msg = (await r.text()).strip()
                    return status_response(errors.ApiError(400 if r.status < 500 else 500,
                                                             "BadRequest" if r.status < 500 else "InternalError", msg))
                resp = await request.respond(content_type="text/plain")
                async for chunk in r.content.iter_any():
                    await resp.send(chunk)
                await resp.eof()
                return None
        except aiohttp.ClientError as e:
            return status_response(errors.ApiError(503, "ServiceUnavailable", f"error talking to the node agent: {e}"))


async def pod_exec(request: Request, ws: Any, namespace: str, name: str) -> None:
    api: Api = request.app.ctx.api
    proto = ws.subprotocol or ""
    try:
        base, container = await locate(api, namespace, name, request.args.get("container"))
    except errors.ApiError as e:
        await _ws_error(ws, proto, e.message, e.code)
        return
    q: list[tuple[str, str]] = [("command", c) for c in request.args.getlist("command") or []]
    for k in ("stdin", "stdout", "stderr", "tty"):
        if request.args.get(k) is not None:
            q.append((k, request.args.get(k)))
    url = f"{base.replace('http', 'ws', 1)}/exec/{namespace}/{name}/{container}?{urlencode(q)}"
    api.security.stream_started(request, 101)
    try:
        await _relay(api, ws, url, proto)
    finally:
        api.security.finish(request, 101)


async def _relay(api: Api, ws: Any, url: str, proto: str) -> None:
    async with aiohttp.ClientSession(connector=_connector(api)) as s:
        try:
            upstream = await s.ws_connect(url, protocols=[proto] if proto else SUBPROTOCOLS, max_msg_size=0)
        except aiohttp.ClientError as e:
            await _ws_error(ws, proto, f"error talking to the node agent: {e}", 503)
            return
        async with upstream:
            async def down() -> None:
                async for msg in upstream:
                    if msg.type == aiohttp.WSMsgType.BINARY:
                        await ws.send(msg.data)
                    elif msg.type == aiohttp.WSMsgType.TEXT:
                        await ws.send(msg.data)
                    else:
                        break

            async def up() -> None:
                while True:
                    data = await ws.recv()
                    if data is None:
                        return
                    await upstream.send_bytes(data.encode() if isinstance(data, str) else data)

            t_down = asyncio.ensure_future(down())
            t_up = asyncio.ensure_future(up())
            try:
                await t_down
            finally:
                t_up.cancel()
                await asyncio.gather(t_up, return_exceptions=True)
    await ws.close()


def _connector(api: Api) -> aiohttp.TCPConnector | None:
    return aiohttp.TCPConnector(ssl=api.kubelet_ssl) if api.kubelet_ssl is not None else None


async def _ws_error(ws: Any, proto: str, message: str, code: int) -> None:
    st = {"metadata": {}, "status": "Failure", "message": message, "code": code,
          "reason": "NotFound" if code == 404 else ("BadRequest" if code == 400 else "InternalError")}
    payload = json.dumps(st).encode() if proto.startswith(("v4", "v5")) else message.encode()
    try:
        await ws.send(b"\x03" + payload)
        await ws.close()
    except Exception:  # the client may already be gone
        pass


_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
        "transfer-encoding", "upgrade", "host", "authorization", "content-length"}


async def node_proxy(request: Request, name: str, path: str = "") -> HTTPResponse | None:
    """``nodes/<name>/proxy/<path>``: any request to the node's agent (its ``/metrics``,
    ``/metrics/resource``, ``/metrics/cadvisor``, ``/stats/summary``, ``/healthz``, logs...),
    as the apiserver's kubelet client (``--kubelet-client-certificate``; the caller was authorized
    for ``nodes/proxy`` already), the answer streamed back."""
    api: Api = request.app.ctx.api
    node = await _get(api, "nodes", None, name)
    if node is None:
        return status_response(errors.ApiError(404, "NotFound", f'nodes "{name}" not found',
                                               details={"name": name, "kind": "nodes"}))
    st = node.get("status") or {}
    addr = next((a["address"] for a in st.get("addresses") or [] if a.get("type") == "InternalIP"), None)
    port = ((st.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
    if not addr or not port:
        return status_response(errors.ApiError(503, "ServiceUnavailable", f"node {name} has no agent endpoint"))
    scheme = "https" if api.kubelet_ssl is not None else "http"
    url = f"{scheme}://{addr}:{port}/{path}" + (f"?{request.query_string}" if request.query_string else "")
    headers = {k: v for k, v in request.headers.items()
               if k.lower() not in _HOP and not k.lower().startswith(("impersonate-", "x-remote-"))}
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=5)
    async with aiohttp.ClientSession(timeout=timeout, auto_decompress=False, connector=_connector(api)) as s:
        try:
            async with s.request(request.method, url, headers=headers, data=request.body or None) as r:
                out = {k: v for k, v in r.headers.items() if k.lower() not in _HOP and k.lower() != "content-type"}
                resp = await request.respond(status=r.status, headers=out,
                                             content_type=r.headers.get("Content-Type", "text/plain"))
                async for chunk in r.content.iter_any():
                    await resp.send(chunk)
                await resp.eof()
                return None
        except aiohttp.ClientError as e:
            return status_response(errors.ApiError(503, "ServiceUnavailable", f"error trying to reach service: {e}"))


def install(app: Sanic) -> None:
    """Register the log, exec and node proxy routes (more specific than the catch-all ``/api/<path>``)."""
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]
    app.add_route(node_proxy, "/api/v1/nodes/<name>/proxy", methods=methods, name="node_proxy_root")
    app.add_route(node_proxy, "/api/v1/nodes/<name>/proxy/<path:path>", methods=methods, name="node_proxy")
    app.add_route(pod_log, "/api/v1/namespaces/<namespace>/pods/<name>/log", methods=["GET"], name="pod_log")
    app.add_websocket_route(pod_exec, "/api/v1/namespaces/<namespace>/pods/<name>/exec",
                            subprotocols=SUBPROTOCOLS, name="pod_exec")
