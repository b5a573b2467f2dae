"""Reaching a node's agent from the apiserver (what kube-apiserver's kubelet client does).

A Node's ``status.addresses`` (InternalIP) and ``status.daemonEndpoints.kubeletEndpoint.Port``
say where its agent listens. Connections use HTTPS with the apiserver's
``kube-apiserver-kubelet-client`` certificate (``api.kubelet_ssl``; the agent authorizes it
through a SubjectAccessReview on ``nodes/proxy``); without the kubelet flags, plain HTTP
(development). Also: streams that were upgraded (WebSocket) relayed to the agent, and the
audit and metrics wrapping every connect endpoint shares. Users: ``proxies.py`` (log, exec,
attach), ``portforward.py``, ``httpproxy.py``, ``podtunnel.py``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from sanic import Request
from sanic.response import HTTPResponse

from controlplane.apiserver.endpoints import metrics
from controlplane.apiserver.endpoints.common import Api, status_response
from controlplane.apiserver.meta import errors


async def get_object(api: Api, plural: str, namespace: str | None, name: str) -> dict[str, Any] | None:
    info = api.registry.get("", "v1", plural)
    assert info is not None
    return await api.store.get_or_none(info, namespace, name)


def not_found(plural: str, name: str) -> errors.ApiError:
    return errors.ApiError(404, "NotFound", f'{plural} "{name}" not found', details={"name": name, "kind": plural})


async def get_pod(api: Api, namespace: str, name: str) -> dict[str, Any]:
    pod = await get_object(api, "pods", namespace, name)
    if pod is None:
        raise not_found("pods", name)
    return pod


def node_address(node: dict[str, Any]) -> tuple[str | None, int | None]:
    """(InternalIP, agent port) of a Node, as its agent published them."""
    st = node.get("status") or {}
    addr = next((a["address"] for a in st.get("addresses") or [] if a.get("type") == "InternalIP"), None)
    port = ((st.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
    return addr, int(port) if port else None


async def agent_base(api: Api, node_name: str) -> str:
    """``https://ADDRESS:PORT`` of a node's agent; 404/503 as Kubernetes words them."""
    node = await get_object(api, "nodes", None, node_name)
    if node is None:
        raise errors.ApiError(404, "NotFound", f'nodes "{node_name}" not found')
    addr, port = node_address(node)
    if not port:
        raise errors.ApiError(503, "ServiceUnavailable", f"node {node_name} has no agent endpoint")
    scheme = "https" if api.kubelet_ssl is not None else "http"
    return f"{scheme}://{addr or '127.0.0.1'}:{port}"


async def pod_agent_base(api: Api, pod: dict[str, Any]) -> str:
    name = pod["metadata"]["name"]
    node_name = (pod.get("spec") or {}).get("nodeName")
    if not node_name:
        raise errors.ApiError(400, "BadRequest", f"pod {name} does not have a host assigned")
    return await agent_base(api, node_name)


def ws_url(base: str) -> str:
    return base.replace("http", "ws", 1)


def connector(api: Api) -> aiohttp.TCPConnector | None:
    return aiohttp.TCPConnector(ssl=api.kubelet_ssl) if api.kubelet_ssl is not None else None


def session(api: Api, **kw: Any) -> aiohttp.ClientSession:
    """A client session to agents (the caller closes it)."""
    return aiohttp.ClientSession(connector=connector(api), **kw)


BASE64_PROTOCOLS = ("v4.base64.channel.k8s.io", "base64.channel.k8s.io")


def binary_protocol(proto: str) -> str:
    """The binary channel protocol the agent speaks for a client's (base64 variants: the
    same channels, text frames)."""
    return proto.replace("base64.", "", 1) if proto in BASE64_PROTOCOLS else proto


def base64_channels(recv: Callable[[], Awaitable[bytes | str | None]], send: Callable[[Any], Awaitable[None]]
                    ) -> tuple[Callable[[], Awaitable[bytes | None]], Callable[[bytes], Awaitable[None]]]:
    """``recv``/``send`` of a client speaking a base64 channel protocol, as binary channel
    messages: a text frame is the channel as a digit (``'0'`` + channel) and the data in
    base64 (Kubernetes' ``wsstream``); a frame that does not decode is dropped."""
    async def recv64() -> bytes | None:
        while True:
            data = await recv()
            if data is None:
                return None
            text = data.decode("latin-1") if isinstance(data, bytes) else data
            if not text:
                continue
            try:
                return bytes([(ord(text[0]) - ord("0")) & 0xFF]) + base64.b64decode(text[1:], validate=True)
            except (binascii.Error, ValueError):
                continue

    async def send64(data: bytes) -> None:
        if data:
            await send(chr(ord("0") + data[0]) + base64.b64encode(data[1:]).decode("ascii"))

    return recv64, send64


DRAIN_TIMEOUT = 10.0  # seconds to deliver the agent's last messages once it stopped reading


async def pipe(upstream: aiohttp.ClientWebSocketResponse, recv: Callable[[], Awaitable[bytes | str | None]],
               send: Callable[[bytes], Awaitable[None]]) -> None:
    """Relay messages between an upgraded client connection and the agent until the agent's
    side ends (everything it sent is delivered: an exec's exit status comes last) or the
    client goes away (``recv`` returns None)."""
    async def down() -> None:
        async for msg in upstream:
            if msg.type in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):
                await send(msg.data if isinstance(msg.data, bytes) else msg.data.encode())
            else:
                break

    async def up() -> None:
        while True:
            try:
                data = await recv()
            except Exception:  # noqa: BLE001 - the client's connection broke (Sanic raises ConnectionClosed)
                return
            if data is None:
                return  # the client is gone: ending here drops the agent's side too
            await upstream.send_bytes(data.encode() if isinstance(data, str) else data)  # raises: the agent's side

    loop = asyncio.get_running_loop()
    t_down, t_up = loop.create_task(down()), loop.create_task(up())
    try:
        await asyncio.wait([t_down, t_up], return_when=asyncio.FIRST_COMPLETED)
        if t_up.done() and not t_down.done() and (t_up.cancelled() or t_up.exception() is not None):
            # the agent's side is closing: deliver what it still sends (bounded, should it hang)
            await asyncio.wait([t_down], timeout=DRAIN_TIMEOUT)
    finally:
        for t in (t_down, t_up):
            t.cancel()
        await asyncio.gather(t_down, t_up, return_exceptions=True)


class Connect:
    """Audit and metrics of one connect request (``apiserver_request_total{verb="CONNECT"}``;
    the audit log's ResponseStarted/ResponseComplete): ``reply`` for an answer sent whole,
    ``streamed`` once a response or upgraded stream has started, ``done`` at its end."""

    def __init__(self, api: Api, request: Request, resource: str, subresource: str) -> None:
        self.api, self.request = api, request
        self.labels = ("CONNECT", "", "v1", resource, subresource)
        self.code = 0
        self.t0 = time.perf_counter()
        metrics._child(metrics.INFLIGHT, "readOnly").inc()

    async def reply(self, resp: HTTPResponse) -> None:
        """Send a complete answer (an error, a redirect) and finish."""
        self.code = resp.status
        await self.request.respond(resp)  # the response middleware's audit stage runs here
        self.done()

    async def error(self, e: errors.ApiError) -> None:
        await self.reply(status_response(e))

    def upgraded(self) -> None:
        """A stream the response middleware does not see (WebSocket, SPDY): ResponseStarted."""
        self.code = 101
        self.api.security.stream_started(self.request, 101)

    def done(self) -> None:
        if self.labels is None:
            return
        metrics._child(metrics.INFLIGHT, "readOnly").dec()
        metrics._child(metrics.DURATION, *self.labels).observe(time.perf_counter() - self.t0)
        metrics._child(metrics.REQUESTS, *self.labels, str(self.code or 200)).inc()
        self.labels = None  # type: ignore[assignment]
        self.api.security.finish(self.request, self.code or None)
