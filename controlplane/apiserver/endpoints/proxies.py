"""Proxying ``pods/X/log``, ``pods/X/exec`` and ``pods/X/attach`` from the apiserver to the
node agent that runs the pod (what the kube-apiserver does with the kubelet's port).

The pod names its node; ``nodeagent.py`` finds the node's agent and connects over HTTPS with
the apiserver's ``kube-apiserver-kubelet-client`` certificate (``--kubelet-client-certificate``;
the agent authorizes it through a SubjectAccessReview on ``nodes/proxy``), verifying the
agent's serving certificate against ``--kubelet-certificate-authority`` (``api.kubelet_ssl``);
without those flags it speaks plain HTTP (development). The caller was already authorized for
``pods/log`` / ``pods/exec`` / ``pods/attach`` by the server's filters (a WebSocket upgrade
needs ``get`` and ``create``); streams are audited when they start and when they end, and
exec/attach pass CONNECT admission (``admission/connect.py``) first.
Logs stream through (``follow``, ``previous``, ``tailLines``, ``sinceSeconds``/``sinceTime``,
``timestamps``, ``limitBytes``, ``container``); exec and attach are WebSocket relays speaking the
``v5``/``v4.channel.k8s.io`` subprotocols kubectl 1.32 offers (and the base64 variants, translated
by ``nodeagent.base64_channels``), or a ``POST`` upgraded to SPDY/3.1
(older kubectl, or 1.32's fallback) translated to the agent's WebSocket by ``spdystreams.py``.

Wiring: ``server/routes.build_app`` calls ``install(app)`` (these routes are more specific
than the catch-all ``/api/<path>``), which also installs ``portforward.py`` (pods/portforward)
and ``httpproxy.py`` (pods/proxy, services/proxy, nodes/proxy).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import aiohttp
from sanic import Request, Sanic
from sanic.response import HTTPResponse

from controlplane.apiserver.admission import connect as connect_admission
from controlplane.apiserver.endpoints import httpproxy, nodeagent, portforward, spdystreams, upgrade
from controlplane.apiserver.endpoints.common import Api, status_response
from controlplane.apiserver.meta import errors
from controlplane.log import get_logger

log = get_logger(__name__)
SUBPROTOCOLS = ["v5.channel.k8s.io", "v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io",
                *nodeagent.BASE64_PROTOCOLS]
LOG_PARAMS = ("follow", "previous", "tailLines", "sinceSeconds", "sinceTime", "timestamps", "limitBytes")


async def locate(api: Api, namespace: str, name: str, container: str | None) -> tuple[str, str]:
    """(agent base URL, container name) for a pod; raises ``ApiError`` as Kubernetes words it."""
    pod = await nodeagent.get_pod(api, namespace, name)
    spec = pod.get("spec") or {}
    names = [c["name"] for c in spec.get("containers") or []]
    all_names = names + [c["name"] for c in (spec.get("initContainers") or []) + (spec.get("ephemeralContainers") or [])]
    if not container:
        if len(names) != 1:
            raise errors.ApiError(400, "BadRequest", f"a container name must be specified for pod {name}, "
                                                     f"choose one of: [{' '.join(names)}]")
        container = names[0]
    elif container not in all_names:
        raise errors.ApiError(400, "BadRequest", f"container {container} is not valid for pod {name}")
    return await nodeagent.pod_agent_base(api, pod), container


async def pod_log(request: Request, namespace: str, name: str) -> HTTPResponse | None:
    api: Api = request.app.ctx.api
    try:
        base, container = await locate(api, namespace, name, request.args.get("container"))
    except errors.ApiError as e:
        return status_response(e)
    q = {k: request.args.get(k) for k in LOG_PARAMS if request.args.get(k) is not None}
    url = f"{base}/containerLogs/{namespace}/{name}/{container}?{urlencode(q)}"
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=5)
    async with aiohttp.ClientSession(timeout=timeout, connector=nodeagent.connector(api)) as s:
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
                api.security.finish(request)  # a followed log ends: ResponseComplete
                return None
        except aiohttp.ClientError as e:
            return status_response(errors.ApiError(503, "ServiceUnavailable", f"error talking to the node agent: {e}"))


async def pod_exec(request: Request, ws: Any, namespace: str, name: str) -> None:
    await _stream(request, ws, namespace, name, "exec")


async def pod_attach(request: Request, ws: Any, namespace: str, name: str) -> None:
    await _stream(request, ws, namespace, name, "attach")


def _agent_query(request: Request, sub: str) -> list[tuple[str, str]]:
    q: list[tuple[str, str]] = [("command", c) for c in request.args.getlist("command") or []] if sub == "exec" else []
    for k in ("stdin", "stdout", "stderr", "tty"):
        if request.args.get(k) is not None:
            q.append((k, request.args.get(k)))
    return q


async def _admit(request: Request, namespace: str, name: str, sub: str, q: list[tuple[str, str]]) -> tuple[str, str]:
    """CONNECT admission, then locate the pod's agent and container (kube-apiserver admits a
    connect request before its ``Connect`` resolves the pod's node: an unscheduled pod's exec
    reaches the webhooks too)."""
    api: Api = request.app.ctx.api
    container = request.args.get("container")
    await connect_admission.admit(api, api.registry.get("", "v1", "pods"), namespace, name, sub,  # type: ignore[arg-type]
                                  {**({"container": container} if container else {}),
                                   **{k: v for k, v in q if k != "command"},
                                   **({"command": request.args.getlist("command") or []} if sub == "exec" else {})})
    return await locate(api, namespace, name, container)


async def _stream(request: Request, ws: Any, namespace: str, name: str, sub: str) -> None:
    api: Api = request.app.ctx.api
    proto = ws.subprotocol or ""
    q = _agent_query(request, sub)
    try:
        base, container = await _admit(request, namespace, name, sub, q)
    except errors.ApiError as e:
        await _ws_error(ws, proto, e.message, e.code)
        return
    url = f"{nodeagent.ws_url(base)}/{sub}/{namespace}/{name}/{container}?{urlencode(q)}"
    api.security.stream_started(request, 101)
    try:
        await _relay(api, ws, url, proto)
    finally:
        api.security.finish(request, 101)


async def _relay(api: Api, ws: Any, url: str, proto: str) -> None:
    async with nodeagent.session(api) as s:
        try:
            protocols = [nodeagent.binary_protocol(proto)] if proto else SUBPROTOCOLS[:5]
            upstream = await s.ws_connect(url, protocols=protocols, max_msg_size=0)
        except aiohttp.ClientError as e:
            await _ws_error(ws, proto, f"error talking to the node agent: {e}", 503)
            return
        recv, send = (nodeagent.base64_channels(ws.recv, ws.send) if proto in nodeagent.BASE64_PROTOCOLS
                      else (ws.recv, ws.send))
        async with upstream:
            await nodeagent.pipe(upstream, recv, send)
    await ws.close()


async def pod_exec_spdy(request: Request, namespace: str, name: str) -> None:
    await _spdy_stream(request, namespace, name, "exec")


async def pod_attach_spdy(request: Request, namespace: str, name: str) -> None:
    await _spdy_stream(request, namespace, name, "attach")


def _flag(request: Request, name: str) -> bool:
    return (request.args.get(name) or "").lower() in ("1", "true")


async def _spdy_stream(request: Request, namespace: str, name: str, sub: str) -> None:
    """exec/attach as a ``POST`` upgraded to SPDY/3.1 (``spdystreams.py`` translates to the
    agent's WebSocket). Errors before the upgrade are plain Status answers."""
    api: Api = request.app.ctx.api
    c = nodeagent.Connect(api, request, "pods", sub)
    try:
        if not (request.headers.get("upgrade") or "").lower().startswith("spdy/3.1"):
            raise errors.bad_request("Upgrade request required")
        offered = [v.strip() for v in ",".join(request.headers.getall("x-stream-protocol-version", [])).split(",")
                   if v.strip()]
        if not offered:
            raise errors.bad_request("unable to upgrade: X-Stream-Protocol-Version is required")
        proto = spdystreams.negotiate(offered)
        if proto is None:
            raise errors.ApiError(403, "Forbidden", "unable to upgrade: unable to negotiate protocol: client supports "
                                                    f"{offered}, server supports {list(spdystreams.PROTOCOLS)}")
        want = {k: _flag(request, k) for k in ("stdin", "stdout", "stderr", "tty")}
        if not (want["stdin"] or want["stdout"] or want["stderr"]):
            raise errors.bad_request("you must specify at least 1 of stdin, stdout, stderr")
        q = _agent_query(request, sub)
        if want["tty"]:  # the kubelet drops stderr on a terminal
            q = [(k, v) for k, v in q if k != "stderr"]
        base, container = await _admit(request, namespace, name, sub, q)
    except errors.ApiError as e:
        await c.error(e)
        return
    url = f"{nodeagent.ws_url(base)}/{sub}/{namespace}/{name}/{container}?{urlencode(q)}"
    async with nodeagent.session(api) as s:
        try:
            agent = await s.ws_connect(url, protocols=["v5.channel.k8s.io"], max_msg_size=0)
        except (aiohttp.ClientError, OSError) as e:
            await c.error(errors.ApiError(503, "ServiceUnavailable", f"error dialing backend: {e}"))
            return
        async with agent:
            raw = upgrade.hijack(request, "101 Switching Protocols", [
                ("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1"), ("X-Stream-Protocol-Version", proto)])
            c.upgraded()
            try:
                expected = spdystreams.expected_streams(proto, *(want[k] for k in ("stdin", "stdout", "stderr", "tty")))
                await spdystreams.Bridge(proto, expected, raw.send, agent).run(raw.recv)
            except (ConnectionError, aiohttp.ClientError) as e:
                log.debug("remote command stream ended", error=str(e))
            finally:
                raw.end_connection()
                c.done()


async def _ws_error(ws: Any, proto: str, message: str, code: int) -> None:
    st = {"metadata": {}, "status": "Failure", "message": message, "code": code,
          "reason": "NotFound" if code == 404 else ("BadRequest" if code == 400 else "InternalError")}
    payload = json.dumps(st).encode() if proto.startswith(("v4", "v5")) else message.encode()
    try:
        if proto in nodeagent.BASE64_PROTOCOLS:
            await nodeagent.base64_channels(ws.recv, ws.send)[1](b"\x03" + payload)
        else:
            await ws.send(b"\x03" + payload)
        await ws.close()
    except Exception:  # the client may already be gone
        pass


def install(app: Sanic) -> None:
    """Register the log, exec, attach, port-forward and proxy routes (more specific than the
    catch-all ``/api/<path>``)."""
    app.add_route(pod_log, "/api/v1/namespaces/<namespace>/pods/<name>/log", methods=["GET"], name="pod_log")
    app.add_websocket_route(pod_exec, "/api/v1/namespaces/<namespace>/pods/<name>/exec",
                            subprotocols=SUBPROTOCOLS, name="pod_exec")
    app.add_websocket_route(pod_attach, "/api/v1/namespaces/<namespace>/pods/<name>/attach",
                            subprotocols=SUBPROTOCOLS, name="pod_attach")
    app.add_route(pod_exec_spdy, "/api/v1/namespaces/<namespace>/pods/<name>/exec", methods=["POST"],
                  name="pod_exec_spdy")
    app.add_route(pod_attach_spdy, "/api/v1/namespaces/<namespace>/pods/<name>/attach", methods=["POST"],
                  name="pod_attach_spdy")
    portforward.install(app)
    httpproxy.install(app)
