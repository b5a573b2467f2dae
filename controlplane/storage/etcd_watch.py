"""The gap-free etcd watch stream behind ``EtcdBackend.watch`` (see ``etcd.py``).

etcd3aio's own watch resumes from the response header's revision + 1, which can skip events;
this one drives the gRPC Watch stream itself, remembers the last delivered event's
``mod_revision`` and, after any broken stream, re-creates the watch from the next revision.
Compaction (the watch is cancelled with ``compact_revision``) surfaces as ``CompactedError``.
Neighbours: ``etcd.py`` (the backend: its gRPC channel, as a ``WatchChannel``), ``etcd_rpc.py``
(messages, error mapping), the apiserver's watch cache (the one consumer per resource).
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Protocol

import grpc
import grpc.aio

from controlplane.log import get_logger
from controlplane.storage.etcd_rpc import TRANSIENT, kv_of, map_rpc_error, prefix_range_end, rpc
from controlplane.storage.interface import CompactedError, KeyValue, StorageError, WatchEvent

log = get_logger(__name__)


class WatchChannel(Protocol):
    """What a watch needs of its backend (``etcd.EtcdBackend`` is one)."""

    @property
    def watch_stub(self) -> Any:
        """The gRPC Watch stub, None once the backend is closed."""

    async def start(self) -> None: ...

    async def current_revision(self) -> int: ...


async def _requests(q: asyncio.Queue) -> AsyncIterator:
    while True:
        yield await q.get()


class EtcdWatch:
    """One etcd watch on a prefix that survives reconnects without gaps or duplicates.

    Iterating yields batches (one per etcd response, events in revision order); ``revision`` is
    the last delivered event's revision (the watch resumes after it). An empty batch answers a
    ``request_progress()``: ``progress_revision`` is etcd's revision then. On etcd 3.4 that answer
    is not ordered with the events (it can overtake them), so it is informative only.
    """

    def __init__(self, backend: WatchChannel, prefix: str, start_revision: int, *, prev_kv: bool = True) -> None:
        self._backend = backend
        self._prefix = prefix
        self._next = start_revision
        self._prev_kv = prev_kv
        self.revision = max(start_revision - 1, 0)
        self.progress_revision = 0
        self._reqq: asyncio.Queue | None = None
        self._gen = self._run()

    def __aiter__(self) -> "EtcdWatch":
        return self

    async def __anext__(self) -> list[WatchEvent]:
        return await self._gen.__anext__()

    async def aclose(self) -> None:
        await self._gen.aclose()

    def request_progress(self) -> None:
        """Ask etcd to report the watch's progress (answered only when it is caught up)."""
        if self._reqq is not None:
            self._reqq.put_nowait(rpc.WatchRequest(progress_request=rpc.WatchProgressRequest()))

    def _convert(self, events) -> list[WatchEvent]:  # type: ignore[no-untyped-def]
        out: list[WatchEvent] = []
        for ev in events:
            prev = kv_of(ev.prev_kv) if ev.HasField("prev_kv") else None
            if ev.type == 1:  # DELETE
                kv = KeyValue(ev.kv.key.decode(), prev.value if prev else b"", int(ev.kv.mod_revision),
                              prev.create_revision if prev else 0)
                out.append(WatchEvent("DELETE", kv, prev))
            else:
                out.append(WatchEvent("PUT", kv_of(ev.kv), prev))
        return out

    async def _run(self) -> AsyncIterator[list[WatchEvent]]:
        backend = self._backend
        if self._next <= 0:
            self._next = await backend.current_revision() + 1
            self.revision = self._next - 1
        await backend.start()
        prefix_b = self._prefix.encode()
        backoff = 0.05
        while True:
            stub = backend.watch_stub
            if stub is None:
                raise StorageError("etcd backend closed")
            reqq: asyncio.Queue = asyncio.Queue()
            reqq.put_nowait(rpc.WatchRequest(create_request=rpc.WatchCreateRequest(
                key=prefix_b, range_end=prefix_range_end(prefix_b), start_revision=self._next,
                prev_kv=self._prev_kv,
            )))
            self._reqq = reqq
            call = stub.Watch(_requests(reqq))
            try:
                async for resp in call:
                    if resp.compact_revision:
                        raise CompactedError(self._next, int(resp.compact_revision))
                    if resp.canceled:
                        raise StorageError(f"etcd watch canceled: {resp.cancel_reason}")
                    if resp.created:
                        backoff = 0.05
                        continue
                    if resp.events:
                        batch = self._convert(resp.events)
                        self.revision = batch[-1].kv.mod_revision
                        self._next = self.revision + 1
                        yield batch
                    elif resp.header.revision > self.progress_revision:
                        # etcd 3.4 answers progress requests from the stream's control path, not
                        # in order with the watcher's events: never trust it for resuming.
                        self.progress_revision = int(resp.header.revision)
                        yield []
                log.info("etcd watch stream ended; reconnecting", prefix=self._prefix, next=self._next)
            except grpc.aio.AioRpcError as e:
                if e.code() not in TRANSIENT:
                    raise map_rpc_error(e, "watch", self._next) from e
                log.warning("etcd watch broken; reconnecting", prefix=self._prefix, next=self._next,
                            code=e.code().name, backoff=backoff)
            finally:
                self._reqq = None
                call.cancel()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 2.0)
