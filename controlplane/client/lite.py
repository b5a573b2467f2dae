"""A minimal HTTP/1.1 keep-alive client for ``RestClient``'s plain request/response calls.

Why: aiohttp spends ~150-200 µs of CPU per request in Python (URL objects, multidicts,
tracing hooks, timers, payload objects). The scheduler sends two small POSTs per pod (the
binding and the ``Scheduled`` Event) and that was a quarter of its CPU. ``LitePool`` writes
one pre-formatted request per call on a pooled keep-alive connection and parses the response
itself (``Content-Length``, ``chunked`` or read-to-close): a few tens of µs. Watches (long
streams) stay on aiohttp.

Opt-in: ``RestClient(..., lite_http=True)`` (the scheduler process uses it). Connection-level
failures raise ``LiteConnectionError``, which ``RestClient.request`` maps to the same 503
``ApiStatusError`` as aiohttp's connection errors. A request that finds its reused idle
connection closed by the server before any response byte arrived is retried once on a fresh
connection (the keep-alive race every HTTP client handles). Neighbours: ``rest.RestClient``.
"""

from __future__ import annotations

import asyncio
import ssl as _ssl
import time
from typing import Any
from urllib.parse import urlsplit

IDLE_EXPIRY_S = 30.0  # the apiserver keeps idle connections 120 s


class LiteConnectionError(ConnectionError):
    """The connection failed or closed before a complete response arrived."""

    def __init__(self, msg: str, retryable: bool = False, connect: bool = False) -> None:
        super().__init__(msg)
        self.retryable = retryable
        self.connect = connect  # the connection could not be made: nothing was sent


class _Conn(asyncio.Protocol):
    """One keep-alive connection; one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.served = 0
        self.last_used = 0.0
        self.keep_alive = True
        self._waiter: asyncio.Future | None = None
        self._buf = bytearray()
        self._got_bytes = False
        self._head_end = -1
        self._status = 0
        self._headers: dict[str, str] = {}
        self._mode = ""  # "length" | "chunked" | "close" | "none"
        self._length = 0
        self._pos = 0  # chunked: parse position in _buf
        self._parts: list[bytes] = []
        self._no_body = False

    # -- asyncio.Protocol ----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():
            self.abort()  # bytes nobody asked for: the stream is out of sync
            return
        self._got_bytes = True
        self._buf += data
        try:
            self._parse()
        except (ValueError, IndexError) as e:
            self._fail(LiteConnectionError(f"malformed HTTP response: {e}"))
            self.abort()

    def eof_received(self) -> bool:
        if self._waiter is not None and not self._waiter.done() and self._mode == "close" and self._head_end >= 0:
            self.keep_alive = False
            self._finish(bytes(self._buf[self._head_end:]))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is not None and not self._waiter.done():
            if self._mode == "close" and self._head_end >= 0:
                self.keep_alive = False
                self._finish(bytes(self._buf[self._head_end:]))
                return
            self._fail(LiteConnectionError(f"connection closed: {exc!r}", retryable=not self._got_bytes))

    # -- one exchange --------------------------------------------------------------------
    async def exchange(self, data: bytes, head_only: bool, timeout: float | None) -> tuple[int, dict[str, str], bytes]:
        loop = asyncio.get_running_loop()
        self._waiter = fut = loop.create_future()
        self._buf = bytearray()
        self._got_bytes = False
        self._head_end = -1
        self._mode = ""
        self._parts = []
        self._pos = 0
        self._no_body = head_only
        assert self.transport is not None
        self.transport.write(data)
        timer = loop.call_later(timeout, self._on_timeout) if timeout else None
        try:
            return await fut
        except BaseException:
            self.abort()  # cancelled or failed mid-exchange: the connection state is unknown
            raise
        finally:
            if timer is not None:
                timer.cancel()
            self._waiter = None
            self.served += 1
            self.last_used = time.monotonic()

    def abort(self) -> None:
        self.closed = True
        self.keep_alive = False
        if self.transport is not None:
            self.transport.abort()

    def _on_timeout(self) -> None:
        self._fail(asyncio.TimeoutError())
        self.abort()

    def _fail(self, exc: BaseException) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)

    def _finish(self, body: bytes) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result((self._status, self._headers, body))

    def _parse(self) -> None:
        buf = self._buf
        while self._head_end < 0:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
            version, _, rest = lines[0].partition(" ")
            status = int(rest[:3])
            if 100 <= status < 200:  # interim response: skip it
                del buf[:end + 4]
                continue
            headers: dict[str, str] = {}
            for line in lines[1:]:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
            self._status, self._headers, self._head_end = status, headers, end + 4
            conn = headers.get("connection", "").lower()
            self.keep_alive = version == "HTTP/1.1" and conn != "close" or conn == "keep-alive"
            if self._no_body or status in (204, 304):
                self._mode = "none"
            elif "chunked" in headers.get("transfer-encoding", "").lower():
                self._mode, self._pos = "chunked", end + 4
            elif "content-length" in headers:
                self._mode, self._length = "length", int(headers["content-length"])
            else:
                self._mode, self.keep_alive = "close", False
        if self._mode == "none":
            self._finish(b"")
        elif self._mode == "length":
            if len(buf) - self._head_end >= self._length:
                self._finish(bytes(buf[self._head_end:self._head_end + self._length]))
        elif self._mode == "chunked":
            self._parse_chunks()

    def _parse_chunks(self) -> None:
        buf = self._buf
        while True:
            eol = buf.find(b"\r\n", self._pos)
            if eol < 0:
                return
            size = int(bytes(buf[self._pos:eol]).split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                if buf[eol + 2:eol + 4] == b"\r\n":
                    self._finish(b"".join(self._parts))
                elif buf.find(b"\r\n\r\n", eol) >= 0:  # trailers, ignored
                    self._finish(b"".join(self._parts))
                return
            if len(buf) < eol + 2 + size + 2:
                return
            self._parts.append(bytes(buf[eol + 2:eol + 2 + size]))
            self._pos = eol + 2 + size + 2


class LitePool:
    """Keep-alive connections to one server (at most ``limit`` at a time)."""

    def __init__(self, base_url: str, headers: dict[str, str], ssl_ctx: Any = None, limit: int = 64,
                 timeout: float | None = 60.0) -> None:
        u = urlsplit(base_url)
        self.https = u.scheme == "https"
        self.host = u.hostname or "127.0.0.1"
        self.port = u.port or (443 if self.https else 80)
        self.prefix = u.path.rstrip("/")
        self.timeout = timeout
        self.limit = limit
        self._ssl: Any = None
        if self.https:
            if ssl_ctx is False:
                ctx = _ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = _ssl.CERT_NONE
                self._ssl = ctx
            else:
                self._ssl = ssl_ctx if isinstance(ssl_ctx, _ssl.SSLContext) else _ssl.create_default_context()
        self._host_hdr = u.netloc.rsplit("@", 1)[-1]
        self._fixed = b""
        self.set_headers(headers)
        self._idle: list[_Conn] = []
        self._all: set[_Conn] = set()
        self._sem: asyncio.Semaphore | None = None

    def set_headers(self, headers: dict[str, str]) -> None:
        """The headers every later request carries (besides Host)."""
        fixed = {"Host": self._host_hdr, **headers}
        self._fixed = "".join(f"{k}: {v}\r\n" for k, v in fixed.items()).encode("latin-1")

    def _build(self, method: str, target: str, body: bytes | None, content_type: str | None) -> bytes:
        head = f"{method} {self.prefix}{target} HTTP/1.1\r\n".encode("latin-1") + self._fixed
        if body is None:
            if method in ("POST", "PUT", "PATCH"):
                head += b"Content-Length: 0\r\n"
            return head + b"\r\n"
        ct = f"Content-Type: {content_type}\r\n" if content_type else ""
        return head + f"{ct}Content-Length: {len(body)}\r\n\r\n".encode("latin-1") + body

    async def _connect(self) -> _Conn:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(
                _Conn, self.host, self.port, ssl=self._ssl, server_hostname=self.host if self._ssl else None)
        except OSError as e:
            raise LiteConnectionError(f"cannot connect to {self.host}:{self.port}: {e!r}", connect=True) from e
        self._all.add(conn)
        return conn

    def _take_idle(self) -> _Conn | None:
        now = time.monotonic()
        while self._idle:
            c = self._idle.pop()
            if not c.closed and now - c.last_used < IDLE_EXPIRY_S:
                return c
            self._drop(c)
        return None

    def _drop(self, c: _Conn) -> None:
        self._all.discard(c)
        if not c.closed and c.transport is not None:
            c.closed = True
            c.transport.close()

    async def request(self, method: str, target: str, body: bytes | None = None,
                      content_type: str | None = None) -> tuple[int, dict[str, str], bytes]:
        """(status, lower-cased headers, body) of one request; ``target`` is path + query."""
        data = self._build(method, target, body, content_type)
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.limit)
        async with self._sem:
            for attempt in (0, 1):
                conn = self._take_idle()
                reused = conn is not None
                if conn is None:
                    conn = await self._connect()
                try:
                    res = await conn.exchange(data, method == "HEAD", self.timeout)
                except LiteConnectionError as e:
                    self._drop(conn)
                    if attempt == 0 and reused and e.retryable:
                        continue
                    raise
                except BaseException:
                    self._drop(conn)
                    raise
                if conn.keep_alive and not conn.closed:
                    self._idle.append(conn)
                else:
                    self._drop(conn)
                return res
        raise AssertionError("unreachable")

    async def close(self) -> None:
        for c in list(self._all):
            self._drop(c)
        self._idle.clear()
