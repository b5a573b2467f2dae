"""``kubectl exec`` and ``kubectl attach`` over SPDY/3.1: the remote command protocol of
kubectl before 1.29, and of 1.32 when ``KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false`` or when its
WebSocket upgrade fails.

The client sends ``POST .../pods/NAME/exec`` (or ``attach``) with ``Upgrade: SPDY/3.1`` and
``X-Stream-Protocol-Version`` listing ``v5``..``v1.channel.k8s.io``; the server answers 101 with
the first of those it speaks (Go's ``httpstream.Handshake``: the client's order). Then the
client opens one SPDY stream per standard stream, named by its ``streamtype`` header:
``error`` (always), ``stdin``, ``stdout``, ``stderr`` (not with a terminal), ``resize`` (a
terminal, v3 and later: JSON ``{"Width":W,"Height":H}`` objects back to back). The kubelet
waits until every expected stream exists (30 s), runs the command, copies, writes the result
on the error stream (v4/v5: a ``metav1.Status`` as JSON; v2/v3: the error's text, nothing on
success), closes the streams and says GOAWAY.

The agent speaks the WebSocket channel protocol (``v5.channel.k8s.io``) for exec and attach, so
``Bridge`` translates here, in the apiserver: stdin data -> channel 0, the stdin stream's FIN
-> channel 255 (close stdin), resize objects -> channel 4; channels 1/2/3 -> the stdout,
stderr and error streams. SPDY framing is ``machinery/spdy.py``. User: ``proxies.py``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from controlplane.log import get_logger
from controlplane.machinery import spdy

log = get_logger(__name__)
PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io")
STREAM_CREATION_TIMEOUT = 30.0  # the kubelet's streamCreationTimeout
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
_CHANNEL_STREAM = {STDOUT: "stdout", STDERR: "stderr", ERROR: "error"}


def negotiate(offered: list[str]) -> str | None:
    """The first protocol the client offers that we speak (Go's ``negotiateProtocol``)."""
    return next((p for p in offered if p in PROTOCOLS), None)


def expected_streams(proto: str, stdin: bool, stdout: bool, stderr: bool, tty: bool) -> set[str]:
    """The streams the kubelet waits for: error, the asked ones, stderr only without a
    terminal, resize with a terminal from v3 on."""
    want = {"error"}
    want |= {n for n, on in (("stdin", stdin), ("stdout", stdout), ("stderr", stderr and not tty)) if on}
    if tty and proto != "v2.channel.k8s.io":
        want.add("resize")
    return want


def error_payload(proto: str, status_json: bytes) -> bytes:
    """What goes on the error stream for the agent's status (v4/v5: the Status itself; older
    protocols: the failure's message, nothing on success)."""
    if proto in ("v5.channel.k8s.io", "v4.channel.k8s.io"):
        return status_json
    try:
        st = json.loads(status_json)
    except ValueError:
        return status_json
    if not isinstance(st, dict) or st.get("status") == "Success":
        return b""
    return str(st.get("message") or "").encode()


def split_json(buf: bytes) -> tuple[list[Any], bytes]:
    """Complete JSON values at the start of ``buf`` (the resize stream) and the rest."""
    dec, out = json.JSONDecoder(), []
    text, pos = buf.decode("utf-8", "replace"), 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            return out, b""
        try:
            value, pos = dec.raw_decode(text, pos)
        except ValueError:
            return out, text[pos:].encode()
        out.append(value)


class Bridge:
    """One SPDY remote command connection (server side) joined to the agent's WebSocket."""

    def __init__(self, proto: str, expected: set[str], send: Callable[[bytes], Awaitable[None]],
                 agent: aiohttp.ClientWebSocketResponse) -> None:
        self.proto, self.expected = proto, expected
        self._send_bytes, self.agent = send, agent
        self.framer = spdy.Framer()
        self._lock = asyncio.Lock()
        self.ids: dict[str, int] = {}  # stream type -> stream id
        self.types: dict[int, str] = {}
        self.finished: set[int] = set()  # streams we sent FIN on
        self.ready = asyncio.Event()
        self.resize_buf = b""
        self.closed = False

    async def send(self, frame: spdy.Frame) -> None:
        if self.closed:
            return
        async with self._lock:
            data = self.framer.encode(frame)  # in send order: header compression is stateful
            try:
                await self._send_bytes(data)
            except (ConnectionError, RuntimeError) as e:
                log.debug("remote command connection closed", error=str(e))
                self.closed = True

    async def run(self, recv: Callable[[], Awaitable[bytes | None]]) -> None:
        """Serve until the agent's side ends (the command or attach is over) or the client goes."""
        loop = asyncio.get_running_loop()
        reader = loop.create_task(self._read_client(recv))
        try:
            waiter = loop.create_task(self.ready.wait())
            done, _ = await asyncio.wait([waiter, reader], timeout=STREAM_CREATION_TIMEOUT,
                                         return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if not self.ready.is_set():
                if reader not in done:
                    log.info("remote command: timed out waiting for client to create streams",
                             have=sorted(self.ids), want=sorted(self.expected))
                return
            down = loop.create_task(self._from_agent())
            await asyncio.wait([down, reader], return_when=asyncio.FIRST_COMPLETED)
            if down.done():
                for name in ("stdout", "stderr", "error"):
                    if name in self.ids:
                        await self._fin(self.ids[name])
                await self.send(spdy.GoAway(max(self.ids.values(), default=0)))
            down.cancel()
            await asyncio.gather(down, return_exceptions=True)
        finally:
            self.closed = True
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)

    async def _fin(self, stream_id: int) -> None:
        if stream_id not in self.finished:
            self.finished.add(stream_id)
            await self.send(spdy.Data(stream_id, b"", spdy.FLAG_FIN))

    async def _to_agent(self, channel: int, data: bytes) -> None:
        if not self.agent.closed:
            try:
                await self.agent.send_bytes(bytes([channel]) + data)
            except (ConnectionError, RuntimeError):
                pass  # the agent's side ended: _from_agent sees it

    async def _read_client(self, recv: Callable[[], Awaitable[bytes | None]]) -> None:
        while (data := await recv()) is not None:
            try:
                frames = self.framer.feed(data)
            except spdy.SpdyError as e:
                log.info("remote command: bad SPDY from the client", error=str(e))
                await self.send(spdy.GoAway(0, spdy.PROTOCOL_ERROR))
                return
            for f in frames:
                if isinstance(f, spdy.GoAway):
                    return
                await self._frame(f)

    async def _frame(self, f: spdy.Frame) -> None:
        if isinstance(f, spdy.SynStream):
            typ = spdy.first(f.headers, "streamtype")
            if f.stream_id in self.types or typ not in ("error", "stdin", "stdout", "stderr", "resize") \
                    or typ in self.ids:
                await self.send(spdy.RstStream(f.stream_id, spdy.PROTOCOL_ERROR))
                return
            self.ids[typ], self.types[f.stream_id] = f.stream_id, typ
            await self.send(spdy.SynReply(f.stream_id))
            if self.expected <= set(self.ids):
                self.ready.set()
            if f.fin:
                await self._client_fin(typ)
        elif isinstance(f, spdy.Data):
            typ = self.types.get(f.stream_id)
            if typ is None:
                return
            if f.data:
                await self.send(spdy.WindowUpdate(f.stream_id, len(f.data)))
                if typ == "stdin":
                    await self._to_agent(STDIN, f.data)
                elif typ == "resize":
                    sizes, self.resize_buf = split_json(self.resize_buf + f.data)
                    for size in sizes:
                        await self._to_agent(RESIZE, json.dumps(size).encode())
            if f.fin:
                await self._client_fin(typ)
        elif isinstance(f, spdy.RstStream):
            typ = self.types.get(f.stream_id)
            self.finished.add(f.stream_id)
            if typ is not None:
                await self._client_fin(typ)
        elif isinstance(f, spdy.Ping):
            await self.send(spdy.Ping(f.id))
        # SETTINGS, WINDOW_UPDATE, HEADERS: nothing to do (our sends are not held back)

    async def _client_fin(self, typ: str) -> None:
        if typ == "stdin":
            await self._to_agent(CLOSE, bytes([STDIN]))

    async def _from_agent(self) -> None:
        async for msg in self.agent:
            if msg.type not in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):
                break
            data = msg.data if isinstance(msg.data, bytes) else msg.data.encode()
            if not data:
                continue
            name = _CHANNEL_STREAM.get(data[0])
            sid = self.ids.get(name) if name else None
            if sid is None or sid in self.finished:
                continue
            payload = error_payload(self.proto, data[1:]) if name == "error" else data[1:]
            if payload:
                await self.send(spdy.Data(sid, payload))
