"""``pods/NAME/portforward``: kubectl's port forwarding, relayed to the pod's node agent.

What kubectl 1.32 sends (captured against a loopback listener): first
``GET .../portforward`` with ``Upgrade: websocket`` and ``Sec-WebSocket-Protocol:
SPDY/3.1+portforward.k8s.io`` (SPDY tunnelled in WebSocket binary messages); if that upgrade
fails, ``POST .../portforward`` with ``Upgrade: SPDY/3.1`` and ``X-Stream-Protocol-Version:
portforward.k8s.io``. Both are served: the SPDY bytes go unchanged to the agent's
``/portForward`` over a WebSocket with the tunnelling subprotocol (the agent runs the SPDY
session, ``agent/portforward.py``), as kube-apiserver hands kubectl's stream to the kubelet.
A WebSocket asking for ``v4.channel.k8s.io`` with ``?ports=`` (the ``kubernetes`` Python
client's port forwarding) is relayed the same way; its base64 variants
(``v4.base64.channel.k8s.io``, ``base64.channel.k8s.io``: text frames) are translated to it.

Checks before the upgrade, so that errors are plain HTTP answers: the pod exists (404), it
is on a node whose agent accepts the stream (503 otherwise), and CONNECT admission
(``admission/connect.py``). Authorization happened in the server's filters: ``create`` on
``pods/portforward``, plus ``get`` and ``create`` for a WebSocket upgrade (a GET).
"""

from __future__ import annotations

import aiohttp
from sanic import Request, Sanic

from controlplane.apiserver.admission import connect as connect_admission
from controlplane.apiserver.endpoints import nodeagent, upgrade
from controlplane.apiserver.endpoints.common import Api
from controlplane.apiserver.meta import errors
from controlplane.log import get_logger

log = get_logger(__name__)
SPDY_TUNNEL = "SPDY/3.1+portforward.k8s.io"
PORTFORWARD_PROTOCOL = "portforward.k8s.io"
WS_PROTOCOLS = (SPDY_TUNNEL, "v4.channel.k8s.io", "channel.k8s.io", *nodeagent.BASE64_PROTOCOLS)


def _ports(request: Request) -> list[int]:
    out = []
    for v in request.args.getlist("ports") or []:
        for p in v.split(","):
            try:
                port = int(p)
            except ValueError:
                raise errors.bad_request(f'unable to parse "{p}" as a port') from None
            if not 0 < port < 65536:
                raise errors.bad_request(f"port {port} must be in the range 1-65535")
            out.append(port)
    return out


async def pod_portforward(request: Request, namespace: str, name: str) -> None:
    api: Api = request.app.ctx.api
    c = nodeagent.Connect(api, request, "pods", "portforward")
    up = (request.headers.get("upgrade") or "").lower()
    try:
        if up == "websocket":
            offered = [p.strip() for p in (request.headers.get("sec-websocket-protocol") or "").split(",") if p.strip()]
            proto = next((p for p in WS_PROTOCOLS if p in offered), "")
            if not proto:
                raise errors.bad_request(f"unable to upgrade: none of the offered subprotocols {offered} "
                                         f"is supported (supported: {list(WS_PROTOCOLS)})")
        elif up.startswith("spdy/3.1") and request.method == "POST":
            versions = [v.strip() for v in ",".join(request.headers.getall("x-stream-protocol-version", [])).split(",")]
            if PORTFORWARD_PROTOCOL not in versions:
                raise errors.ApiError(403, "Forbidden", "unable to upgrade: unable to negotiate protocol: client "
                                                        f"supports {versions}, server supports [{PORTFORWARD_PROTOCOL}]")
            proto = SPDY_TUNNEL
        else:
            raise errors.bad_request("Upgrade request required")
        ports = _ports(request) if proto != SPDY_TUNNEL else []
        pod = await nodeagent.get_pod(api, namespace, name)
        base = await nodeagent.pod_agent_base(api, pod)
        await connect_admission.admit(api, api.registry.get("", "v1", "pods"), namespace, name,  # type: ignore[arg-type]
                                      "portforward", {"ports": ports})
    except errors.ApiError as e:
        await c.error(e)
        return
    query = "".join(f"&port={p}" for p in ports).lstrip("&")
    url = f"{nodeagent.ws_url(base)}/portForward/{namespace}/{name}" + (f"?{query}" if query else "")
    async with nodeagent.session(api) as s:
        try:
            agent = await s.ws_connect(url, protocols=[nodeagent.binary_protocol(proto)], max_msg_size=0, autoping=True)
        except aiohttp.WSServerHandshakeError as e:
            code = e.status if e.status in (400, 403, 404) else 503
            await c.error(errors.ApiError(code, {400: "BadRequest", 403: "Forbidden", 404: "NotFound"}.get(
                code, "ServiceUnavailable"), f"error upgrading connection to the node agent: {e.message}"))
            return
        except (aiohttp.ClientError, OSError) as e:
            await c.error(errors.ApiError(503, "ServiceUnavailable", f"error dialing backend: {e}"))
            return
        async with agent:
            try:
                if up == "websocket":
                    ws = await upgrade.websocket(request, [proto])
                    c.upgraded()
                    recv, send = (nodeagent.base64_channels(ws.recv, ws.send) if proto in nodeagent.BASE64_PROTOCOLS
                                  else (ws.recv, ws.send))
                    try:
                        await nodeagent.pipe(agent, recv, send)
                    finally:
                        await ws.close()
                else:
                    raw = upgrade.hijack(request, "101 Switching Protocols", [
                        ("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1"),
                        ("X-Stream-Protocol-Version", PORTFORWARD_PROTOCOL)])
                    c.upgraded()
                    try:
                        await nodeagent.pipe(agent, raw.recv, raw.send)
                    finally:
                        raw.end_connection()
            except (ConnectionError, aiohttp.ClientError) as e:
                log.debug("port-forward stream ended", error=str(e))
            finally:
                c.done()


def install(app: Sanic) -> None:
    app.add_route(pod_portforward, "/api/v1/namespaces/<namespace>/pods/<name>/portforward",
                  methods=["GET", "POST"], name="pod_portforward")
