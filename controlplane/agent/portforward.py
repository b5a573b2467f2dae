"""Port forwarding into a pod: the kubelet's ``/portForward/{ns}/{pod}`` sessions.

Two wire protocols, both on one WebSocket from the apiserver (``server.py`` accepts it):

- ``SPDY/3.1+portforward.k8s.io`` (``SpdySession``): what kubectl 1.32 speaks, tunnelled
  through the apiserver byte for byte. Every forwarded local connection opens two SPDY
  streams with the headers ``streamtype`` (``error``/``data``), ``port`` and ``requestid``;
  we answer each SYN_STREAM at once (kubectl waits for the reply), pair them by request id
  (or, for clients without one, by stream id as the kubelet does), dial the port and copy
  bytes both ways. A failed dial writes Kubernetes' message on the error stream; the end of
  a forward closes the error stream (kubectl waits for that), a FIN from the client
  half-closes the pod connection, a RST_STREAM drops it. WINDOW_UPDATEs follow what was
  written to the pod, so a client that keeps SPDY/3.1 windows is held back by a slow pod.
- ``v4.channel.k8s.io`` (``ChannelSession``): the kubelet's WebSocket port-forward for the
  ports in ``?ports=``: channel ``2i`` carries data of port ``i``, ``2i+1`` its errors, and
  the first message the server sends on each channel is the port (uint16, little endian).
  The apiserver's pods/services proxy reaches pods through it (adding ``address=podIP``: dial
  the pod's IP rather than ``localhost``, as kube-apiserver dials pods), and so can the
  ``kubernetes`` Python client's ``portforward``.

The port is dialed on ``localhost`` inside the pod's network namespace (IPv4, then IPv6), as
containerd does; ``dial_pod`` gives its errors in containerd's words, which kubectl prints.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from controlplane.log import get_logger
from controlplane.machinery import spdy
from controlplane.runtime.network import socket_in_netns

log = get_logger(__name__)
SPDY_PROTOCOL = "SPDY/3.1+portforward.k8s.io"
CHANNEL_PROTOCOLS = ("v4.channel.k8s.io", "channel.k8s.io")
STREAM_CREATION_TIMEOUT = 30.0  # the kubelet's streamCreationTimeout
CHUNK = 32 * 1024

Dial = Callable[[int], Awaitable[socket.socket]]
Send = Callable[[bytes], Awaitable[None]]


class DialError(Exception):
    """The port could not be reached; the message is what the client is shown."""


def _go_errno(e: OSError) -> str:
    """An OS error as Go's net package words it (``connection refused``...)."""
    if isinstance(e, (asyncio.TimeoutError, TimeoutError)) or e.errno == errno.ETIMEDOUT:
        return "i/o timeout"
    return os.strerror(e.errno).lower() if e.errno else str(e)


async def _connect(netns: str, family: int, host: str, port: int, timeout: float) -> socket.socket:
    sock = await asyncio.to_thread(socket_in_netns, netns, family)
    sock.setblocking(False)
    try:
        await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, (host, port)), timeout)
    except BaseException:
        sock.close()
        raise
    return sock


async def dial_pod(netns: str, sandbox_id: str, port: int, timeout: float = 10.0) -> socket.socket:
    """A TCP connection to ``localhost:port`` inside the pod's network namespace (IPv4 first,
    then IPv6, as containerd's port forwarder); ``DialError`` in containerd's words."""
    try:
        return await _connect(netns, socket.AF_INET, "127.0.0.1", port, timeout)
    except (OSError, asyncio.TimeoutError) as e4:
        err4 = f"dial tcp4 127.0.0.1:{port}: " + ("i/o timeout" if isinstance(e4, asyncio.TimeoutError)
                                                  else f"connect: {_go_errno(e4)}")
    try:
        return await _connect(netns, socket.AF_INET6, "::1", port, timeout)
    except (OSError, asyncio.TimeoutError) as e6:
        err6 = f"dial tcp6 [::1]:{port}: " + ("i/o timeout" if isinstance(e6, asyncio.TimeoutError)
                                              else f"connect: {_go_errno(e6)}")
    raise DialError(f'failed to execute portforward in network namespace "{netns}": failed to connect to '
                    f'localhost:{port} inside namespace "{sandbox_id}", IPv4: {err4} IPv6 {err6} ')


async def dial_address(netns: str, ip: str, port: int, timeout: float = 10.0) -> socket.socket:
    """A TCP connection to ``ip:port`` from inside the pod's network namespace (the pod's own
    address: what kube-apiserver dials for the pods and services proxies)."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    try:
        return await _connect(netns, family, ip, port, timeout)
    except asyncio.TimeoutError:
        raise DialError(f"dial tcp {ip}:{port}: i/o timeout") from None
    except OSError as e:
        host = f"[{ip}]" if family == socket.AF_INET6 else ip
        raise DialError(f"dial tcp {host}:{port}: connect: {_go_errno(e)}") from None


def forward_error(port: int, sandbox_id: str, err: str) -> str:
    """The kubelet's message on the error stream (kubectl prints it after ``an error occurred
    forwarding L -> P:``)."""
    return f"error forwarding port {port} to pod {sandbox_id}, uid : {err}"


async def _pump_to_pod(sock: socket.socket, queue: asyncio.Queue[bytes | None],
                       ack: Callable[[int], Awaitable[None]] | None = None) -> None:
    """Client bytes into the pod connection until the client's FIN (None); then half-close."""
    loop = asyncio.get_running_loop()
    while True:
        data = await queue.get()
        if data is None:
            try:
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            return
        await loop.sock_sendall(sock, data)
        if ack is not None:
            await ack(len(data))


# -- SPDY ------------------------------------------------------------------------------------
@dataclass
class _Stream:
    id: int
    type: str
    port: str
    request_id: str
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)  # data stream: client bytes, None at FIN
    reset: asyncio.Event = field(default_factory=asyncio.Event)
    closed_out: bool = False  # we sent FIN (or it was reset)


class SpdySession:
    """One port-forward connection speaking SPDY/3.1 (server side)."""

    def __init__(self, send: Send, dial: Dial, sandbox_id: str) -> None:
        self._send_bytes = send
        self.dial = dial
        self.sandbox_id = sandbox_id
        self.framer = spdy.Framer()
        self._lock = asyncio.Lock()
        self.streams: dict[int, _Stream] = {}
        self.pairs: dict[str, dict[str, _Stream]] = {}
        self.tasks: set[asyncio.Task] = set()
        self._timers: list[asyncio.TimerHandle] = []
        self.closed = False

    async def send(self, frame: spdy.Frame) -> None:
        if self.closed:
            return
        async with self._lock:
            data = self.framer.encode(frame)  # encoded in send order: header compression is stateful
            try:
                await self._send_bytes(data)
            except (ConnectionError, RuntimeError) as e:  # the tunnel went away
                log.debug("port-forward tunnel closed", error=str(e))
                self.closed = True

    async def run(self, messages: AsyncIterator[bytes]) -> None:
        """Serve until the tunnel closes or the client says GOAWAY; then drop every forward."""
        try:
            async for data in messages:
                try:
                    frames = self.framer.feed(data)
                except spdy.SpdyError as e:
                    log.info("port-forward: bad SPDY from the client", error=str(e))
                    await self.send(spdy.GoAway(0, 1))
                    return
                for f in frames:
                    if isinstance(f, spdy.GoAway):
                        return
                    await self._frame(f)
        finally:
            self.closed = True
            for t in self._timers:
                t.cancel()
            for s in self.streams.values():
                s.reset.set()
                s.queue.put_nowait(None)
            for t in list(self.tasks):
                t.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _frame(self, f: spdy.Frame) -> None:
        if isinstance(f, spdy.SynStream):
            await self._syn(f)
        elif isinstance(f, spdy.Data):
            s = self.streams.get(f.stream_id)
            if s is None:
                return
            if s.type == "data" and f.data:
                s.queue.put_nowait(f.data)
            if f.fin:
                s.queue.put_nowait(None)
        elif isinstance(f, spdy.RstStream):
            s = self.streams.get(f.stream_id)
            if s is not None:
                s.closed_out = True
                s.reset.set()
                s.queue.put_nowait(None)
        elif isinstance(f, spdy.Ping):
            await self.send(spdy.Ping(f.id))
        # SETTINGS, WINDOW_UPDATE, HEADERS: nothing to do (we do not hold our sends back)

    async def _syn(self, f: spdy.SynStream) -> None:
        if f.stream_id in self.streams:
            await self.send(spdy.RstStream(f.stream_id, spdy.STREAM_IN_USE))
            return
        typ = spdy.first(f.headers, "streamtype")
        rid = spdy.first(f.headers, "requestid")
        if not rid:  # an old client: the kubelet's best effort pairing by stream id
            rid = str(f.stream_id if typ == "error" else f.stream_id - 2)
        if typ not in ("error", "data"):
            await self.send(spdy.RstStream(f.stream_id, spdy.PROTOCOL_ERROR))
            return
        s = _Stream(f.stream_id, typ, spdy.first(f.headers, "port"), rid)
        self.streams[f.stream_id] = s
        await self.send(spdy.SynReply(f.stream_id))
        pair = self.pairs.setdefault(rid, {})
        if typ in pair:
            await self.send(spdy.RstStream(f.stream_id, spdy.PROTOCOL_ERROR))
            return
        pair[typ] = s
        if len(pair) == 2:
            t = asyncio.get_running_loop().create_task(self._forward(rid, pair["error"], pair["data"]))
            self.tasks.add(t)
            t.add_done_callback(self.tasks.discard)
        else:
            self._timers.append(asyncio.get_running_loop().call_later(
                STREAM_CREATION_TIMEOUT, self._incomplete, rid))

    def _incomplete(self, rid: str) -> None:
        pair = self.pairs.get(rid)
        if pair is None or len(pair) == 2:
            return
        self.pairs.pop(rid, None)
        for s in pair.values():
            self.streams.pop(s.id, None)
            t = asyncio.get_running_loop().create_task(self.send(spdy.RstStream(s.id, spdy.CANCEL)))
            self.tasks.add(t)
            t.add_done_callback(self.tasks.discard)

    async def _fin(self, s: _Stream) -> None:
        if not s.closed_out:
            s.closed_out = True
            await self.send(spdy.Data(s.id, b"", spdy.FLAG_FIN))

    async def _forward(self, rid: str, err: _Stream, data: _Stream) -> None:
        sock: socket.socket | None = None
        try:
            try:
                port = int(data.port)
                if not 0 < port < 65536:
                    raise ValueError(data.port)
            except ValueError:
                await self.send(spdy.Data(err.id, f'error parsing port "{data.port}": invalid port'.encode()))
                return
            try:
                sock = await self.dial(port)
            except DialError as e:
                msg = forward_error(port, self.sandbox_id, str(e))
                log.info("port-forward failed", error=msg)
                await self.send(spdy.Data(err.id, msg.encode()))
                return
            await self._copy(sock, data)
        finally:
            if sock is not None:
                sock.close()
            await self._fin(data)
            await self._fin(err)
            self.pairs.pop(rid, None)
            self.streams.pop(err.id, None)
            self.streams.pop(data.id, None)

    async def _copy(self, sock: socket.socket, data: _Stream) -> None:
        loop = asyncio.get_running_loop()

        async def ack(n: int) -> None:
            if not data.reset.is_set():
                await self.send(spdy.WindowUpdate(data.id, n))

        async def down() -> None:
            while not data.reset.is_set():
                try:
                    chunk = await loop.sock_recv(sock, CHUNK)
                except OSError:
                    chunk = b""
                if not chunk:
                    await self._fin(data)
                    return
                if not data.closed_out:
                    await self.send(spdy.Data(data.id, chunk))

        up = loop.create_task(_pump_to_pod(sock, data.queue, ack))
        dn = loop.create_task(down())
        reset = loop.create_task(data.reset.wait())
        try:
            pending = {up, dn, reset}
            while pending and not reset.done():
                _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                if up.done() and dn.done():
                    break  # both directions closed
                if up.done() and up.exception() is not None:
                    break  # the pod connection broke
        finally:
            for t in (up, dn, reset):
                t.cancel()
            await asyncio.gather(up, dn, reset, return_exceptions=True)


# -- WebSocket channels (v4.channel.k8s.io) -------------------------------------------------
class ChannelSession:
    """The kubelet's WebSocket port-forward: data and error channels per requested port."""

    def __init__(self, send: Send, dial: Dial, sandbox_id: str, ports: list[int]) -> None:
        self._send_bytes = send
        self.dial = dial
        self.sandbox_id = sandbox_id
        self.ports = ports
        self.queues: list[asyncio.Queue[bytes | None]] = [asyncio.Queue() for _ in ports]
        self._lock = asyncio.Lock()

    async def send(self, channel: int, data: bytes) -> None:
        async with self._lock:
            await self._send_bytes(bytes([channel]) + data)

    async def run(self, messages: AsyncIterator[bytes]) -> None:
        for i, port in enumerate(self.ports):
            p = port.to_bytes(2, "little")
            await self.send(2 * i, p)
            await self.send(2 * i + 1, p)
        loop = asyncio.get_running_loop()
        forwards = [loop.create_task(self._forward(i, port)) for i, port in enumerate(self.ports)]

        async def read() -> None:
            async for msg in messages:
                if not msg:
                    continue
                ch, body = msg[0], msg[1:]
                if ch % 2 == 0 and ch // 2 < len(self.queues) and body:
                    self.queues[ch // 2].put_nowait(body)
            for q in self.queues:
                q.put_nowait(None)

        reader = loop.create_task(read())
        try:
            await asyncio.wait([reader, asyncio.gather(*forwards, return_exceptions=True)],
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (reader, *forwards):
                t.cancel()
            await asyncio.gather(reader, *forwards, return_exceptions=True)

    async def _forward(self, i: int, port: int) -> None:
        try:
            sock = await self.dial(port)
        except DialError as e:
            await self.send(2 * i + 1, forward_error(port, self.sandbox_id, str(e)).encode())
            return
        loop = asyncio.get_running_loop()
        up = loop.create_task(_pump_to_pod(sock, self.queues[i]))
        try:
            while True:
                try:
                    chunk = await loop.sock_recv(sock, CHUNK)
                except OSError:
                    chunk = b""
                if not chunk:
                    return
                await self.send(2 * i, chunk)
        finally:
            up.cancel()
            await asyncio.gather(up, return_exceptions=True)
            sock.close()
