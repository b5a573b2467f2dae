"""The exec terminal's relay: the browser's WebSocket to the apiserver's ``pods/exec`` stream.

The browser speaks Kubernetes' channel protocol itself (``v5.channel.k8s.io``, falling back to
``v4.channel.k8s.io``: one byte of channel — 0 stdin, 1 stdout, 2 stderr, 3 error (a
``Status``), 4 resize, 255 close — then the data), exactly as kubectl does; this relay opens
the same subprotocol to the apiserver with the user's credentials and copies binary frames
both ways, unchanged. When the apiserver refuses the upgrade (403 for a user without
``create pods/exec``, 404 ...) the API's own message is sent to the browser on the error
channel as a ``Status``, the way a refused exec ends for kubectl.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import aiohttp

from controlplane.dashboard.upstream import Upstream, status_message
from controlplane.log import get_logger

log = get_logger(__name__)
SUBPROTOCOLS = ["v5.channel.k8s.io", "v4.channel.k8s.io"]
EXEC_PATH = re.compile(r"^/api/v1/namespaces/[a-z0-9.-]+/pods/[a-z0-9.-]+/(exec|attach)$")


def status_frame(code: int, message: str, reason: str = "") -> bytes:
    reasons = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound"}
    st = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
          "reason": reason or reasons.get(code, "InternalError"), "code": code}
    return b"\x03" + json.dumps(st).encode()


async def _refusal(upstream: Upstream, path: str, query: str, code: int) -> bytes:
    """The API's message for a refused upgrade: the same request without the upgrade is
    authorized first, so it answers with the Status the upgrade was refused with."""
    try:
        async with upstream.session.post(upstream.url(path, query)) as r:
            raw = await r.read()
            if r.status == code:
                try:
                    st = json.loads(raw)
                    if isinstance(st, dict) and st.get("kind") == "Status":
                        return b"\x03" + json.dumps(st).encode()
                except ValueError:
                    pass
                return status_frame(code, status_message(raw, code))
    except aiohttp.ClientError:
        pass
    return status_frame(code, f"the apiserver refused the exec stream (HTTP {code})")


async def relay(ws: Any, upstream: Upstream, path: str, query: str) -> None:
    proto = ws.subprotocol or SUBPROTOCOLS[0]
    if not EXEC_PATH.match(path):
        await ws.send(status_frame(400, f"not an exec or attach path: {path}"))
        return
    try:
        up = await upstream.session.ws_connect(upstream.ws_url(path, query), protocols=[proto],
                                               max_msg_size=0, heartbeat=30)
    except aiohttp.WSServerHandshakeError as e:
        await ws.send(await _refusal(upstream, path, query, e.status))
        return
    except aiohttp.ClientError as e:
        await ws.send(status_frame(503, f"error talking to the apiserver: {e}"))
        return
    async with up:
        async def down() -> None:
            async for msg in up:
                if msg.type in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):
                    await ws.send(msg.data)
                else:
                    return

        async def upward() -> None:
            while True:
                data = await ws.recv()
                if data is None:
                    return
                await up.send_bytes(data.encode() if isinstance(data, str) else data)

        t_down, t_up = asyncio.ensure_future(down()), asyncio.ensure_future(upward())
        try:
            await asyncio.wait({t_down, t_up}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (t_down, t_up):
                t.cancel()
            await asyncio.gather(t_down, t_up, return_exceptions=True)
