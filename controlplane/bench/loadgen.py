"""A cheap HTTP/1.1 load generator for the benchmarks: POSTs over keep-alive connections on
bare asyncio streams.

The benchmarks run the load generator on the same two cores as the system under test, so
every microsecond it spends is taken from the apiserver, etcd or the scheduler; a general
client (aiohttp) costs several times more per request than this. Used by
``bench/scheduling.py`` (pod creates) and ``bench/api.py`` (ConfigMap creates).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable, Iterator


class RequestFailed(RuntimeError):
    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"HTTP {status}: {body[:300]!r}")
        self.status = status
        self.body = body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One HTTP/1.1 response with a Content-Length body (what the apiserver sends for writes)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    return status, await reader.readexactly(length)


async def post_many(url: str, path: str, bodies: Iterator[bytes], concurrency: int, *,
                    ok: Callable[[int, bytes], bool] = lambda status, _: status == 201,
                    latencies: list[float] | None = None, ssl: Any = None) -> int:
    """POST every body of ``bodies`` (shared by ``concurrency`` connections) to ``url + path``;
    raises ``RequestFailed`` on the first response ``ok`` rejects. Returns the count sent.
    ``ssl``: the TLS context for an https ``url`` (server verification, client certificate)."""
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    start = b"POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: controlplane-bench\r\n" \
            b"Content-Type: application/json\r\nContent-Length: " % (path.encode(), host.encode())
    sent = 0

    async def worker() -> None:
        nonlocal sent
        reader, writer = await asyncio.open_connection(host, int(port), ssl=ssl,
                                                       server_hostname=host if ssl is not None else None)
        try:
            for body in bodies:
                t0 = time.perf_counter()
                writer.write(b"%s%d\r\n\r\n%s" % (start, len(body), body))
                status, answer = await read_response(reader)
                if not ok(status, answer):
                    raise RequestFailed(status, answer)
                sent += 1
                if latencies is not None:
                    latencies.append(time.perf_counter() - t0)
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return sent
