"""Taking over an HTTP/1.1 connection after ``101 Switching Protocols``: WebSocket with
Sanic's WebSocket implementation, and a raw upgrade (``Upgrade: SPDY/3.1``, kubectl's
fallback) by writing the 101 ourselves and receiving the connection's bytes in place of
Sanic's WebSocket.

The WebSocket handshake is Sanic's ``websocket_handshake`` with one change: kubectl offers the
subprotocol ``SPDY/3.1+portforward.k8s.io``, whose ``/`` is not an RFC 7230 token character,
and the ``websockets`` library's strict header parser refuses the whole handshake (400, so
kubectl falls back to SPDY). Go's servers split the header on commas; ``_ServerProtocol``
does the same.

Sanic has no public hijack; its ``WebSocketProtocol`` hands every received byte to
``protocol.websocket`` once that is set (what its WebSocket handshake does), closes it with
``end_connection`` when the request task ends, and treats a request whose ``upgrade_websocket``
is set as answered. ``RawConnection`` plugs into exactly those three points (pinned by
``tests/integration/test_streams.py``, which runs kubectl's SPDY fallback). Used by
``portforward.py`` and ``proxies.py`` (exec/attach over SPDY).
"""

from __future__ import annotations

import asyncio
from typing import Any, Sequence

from sanic import Request
from sanic.server.websockets.impl import WebsocketImplProtocol
from websockets.datastructures import Headers as WSHeaders
from websockets.http11 import Request as WSRequest
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.typing import Subprotocol

from controlplane.log import get_logger

log = get_logger(__name__)
_HIGH_WATER = 64  # received chunks queued before we stop reading the socket


class _Closed:
    state = 3  # websockets' State.CLOSED: Sanic's shutdown treats the connection as idle


class RawConnection:
    """The byte stream of a hijacked connection (``recv`` → bytes, None at the end)."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.ws_proto = _Closed()
        self.paused = False

    # -- what Sanic's protocol calls -------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        self.queue.put_nowait(data)
        if self.queue.qsize() > _HIGH_WATER and not self.paused:
            self.paused = True
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        self.queue.put_nowait(None)
        return True  # keep our half open: we may still be sending

    def connection_lost(self, exc: Exception | None) -> None:
        self.queue.put_nowait(None)

    def end_connection(self, code: int = 1000) -> None:
        if not self.transport.is_closing():
            self.transport.close()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.end_connection(code)

    # -- what the endpoint uses ------------------------------------------------------------
    async def recv(self) -> bytes | None:
        data = await self.queue.get()
        if self.paused and self.queue.qsize() < _HIGH_WATER // 2:
            self.paused = False
            self.transport.resume_reading()
        return data

    async def send(self, data: bytes) -> None:
        if self.transport.is_closing():
            raise ConnectionResetError("connection closed")
        self.transport.write(data)


def hijack(request: Request, status_line: str, headers: Sequence[tuple[str, str]]) -> RawConnection:
    """Answer ``101`` with ``headers`` and take the connection over."""
    protocol = request.transport.get_protocol()
    transport = request.transport
    raw = RawConnection(transport)
    head = f"HTTP/1.1 {status_line}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    transport.write(head.encode("latin-1"))
    protocol.websocket = raw  # every later byte of this connection comes to us
    request.stream.upgrade_websocket = True  # the request counts as answered
    return raw


class _ServerProtocol(ServerProtocol):
    """Subprotocols split on commas as Go does, not parsed as RFC 7230 tokens."""

    def process_subprotocol(self, headers: WSHeaders) -> Subprotocol | None:
        offered = [Subprotocol(p.strip()) for h in headers.get_all("Sec-WebSocket-Protocol")
                   for p in h.split(",") if p.strip()]
        return self.select_subprotocol(offered)


async def websocket(request: Request, subprotocols: Sequence[str]) -> WebsocketImplProtocol:
    """Sanic's WebSocket handshake, from an ordinary route (which could still answer an HTTP
    error before upgrading); returns Sanic's WebSocket (``recv``, ``send``, ``close``)."""
    protocol = request.transport.get_protocol()
    ws_proto = _ServerProtocol(max_size=protocol.websocket_max_size,
                               subprotocols=[Subprotocol(p) for p in subprotocols], state=State.OPEN)
    resp = ws_proto.accept(WSRequest(path=request.path, headers=WSHeaders(request.headers)))
    if not 100 <= resp.status_code <= 299:
        raise ConnectionError(f"WebSocket handshake refused: {resp.status_code} {resp.body!r}")
    head = f"HTTP/1.1 {resp.status_code} {resp.reason_phrase}\r\n" + \
        "".join(f"{k}: {v}\r\n" for k, v in resp.headers.raw_items()) + "\r\n"
    request.transport.write(head.encode("latin-1"))
    ws = WebsocketImplProtocol(ws_proto, ping_interval=protocol.websocket_ping_interval,
                               ping_timeout=protocol.websocket_ping_timeout, close_timeout=protocol.websocket_timeout)
    protocol.websocket = ws
    await ws.connection_made(protocol, loop=asyncio.get_running_loop())
    return ws
