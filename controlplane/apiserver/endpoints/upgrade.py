"""Taking over an HTTP/1.1 connection after ``101 Switching Protocols``: WebSocket through
Sanic's own handshake, and a raw upgrade (``Upgrade: SPDY/3.1``, kubectl's fallback) by
writing the 101 ourselves and receiving the connection's bytes in place of Sanic's WebSocket.

Sanic has no public hijack; its ``WebSocketProtocol`` hands every received byte to
``protocol.websocket`` once that is set (what its WebSocket handshake does), closes it with
``end_connection`` when the request task ends, and treats a request whose ``upgrade_websocket``
is set as answered. ``RawConnection`` plugs into exactly those three points (pinned by
``tests/integration/test_streams.py``, which runs kubectl's SPDY fallback). Used by
``portforward.py``.
"""

from __future__ import annotations

import asyncio
from typing import Any, Sequence

from sanic import Request

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


async def websocket(request: Request, subprotocols: Sequence[str]) -> Any:
    """Sanic's WebSocket handshake from an ordinary route (so that the route could still
    answer an HTTP error before upgrading)."""
    protocol = request.transport.get_protocol()
    return await protocol.websocket_handshake(request, list(subprotocols))
