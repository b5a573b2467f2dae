"""Group commit: the apiserver's concurrent writes go to etcd together, a batch per transaction.

Every create/update/delete of ``store.ObjectStore`` is submitted here. While fewer than
``max_inflight`` transactions are on their way to etcd a write leaves at once (alone: the
same single-write transaction as without this module, so an idle server adds no latency);
writes that arrive meanwhile queue up and leave together as one ``Backend.write_batch``
(distinct keys, at most ``max_ops`` writes and ``max_bytes`` of values per batch) as soon as
a transaction slot frees up. Each write keeps its own precondition and its own result.

A transaction still unanswered after ``STALL_S`` gives its slot up (it finishes on its own; at
most ``MAX_STALLED`` do so at once): one sent to an etcd member whose leader was just killed
waits for etcd's request timeout (5 s + 2 x the election timeout = 7 s) before it fails, and
with the slots held every write of this apiserver queued behind it for those 7 s, although a
new transaction commits as soon as the survivors elected a leader (about a second). Writes in
different transactions are independent (each has its own compare), so their order of commit
does not matter.

What a client can see: writes committed in one batch share a ``resourceVersion`` (the etcd
revision). Their watch events are delivered together (etcd sends one revision's events in one
response; the watch cache and the watch handler keep them together), lists and watches at a
revision see all or none of them, and compare-and-set is per object as before. This is a
deliberate difference from kube-apiserver (one revision per write) that halves the CPU a
write costs etcd and the apiserver's gRPC client under load; see docs/apiserver.md.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from prometheus_client import Histogram

from controlplane.storage.interface import (
    Backend, ConflictError, KeyExistsError, KeyNotFoundError, KeyValue, StorageError, WriteOp,
)

BATCH_SIZE = Histogram(
    "apiserver_storage_batch_writes", "Writes per etcd transaction (group commit).",
    buckets=(1, 2, 4, 8, 16, 32, 64),
)


STALL_S = 1.0  # a transaction in flight longer than this frees its slot for the queue
MAX_STALLED = 8  # transactions allowed to run on past STALL_S at once


class GroupCommitter:
    def __init__(self, backend: Backend, *, max_ops: int = 64, max_bytes: int = 1 << 20,
                 max_inflight: int = 2) -> None:
        self.backend = backend
        self.max_ops = max_ops
        self.max_bytes = max_bytes
        self.max_inflight = max_inflight
        self._queue: deque[tuple[WriteOp, asyncio.Future[Any]]] = deque()
        self._inflight = 0
        self._stalled = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, op: WriteOp) -> KeyValue:
        """Commit ``op``; returns its KeyValue or raises its StorageError."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((op, fut))
        if self._inflight < self.max_inflight:
            self._inflight += 1
            task = asyncio.get_running_loop().create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await fut

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        while self._queue:
            _, fut = self._queue.popleft()
            fut.cancel()

    def _take(self) -> list[tuple[WriteOp, asyncio.Future[Any]]]:
        """The next batch: queued writes in order, distinct keys, within the size limits (a
        write whose key is already in the batch waits for the next one)."""
        batch: list[tuple[WriteOp, asyncio.Future[Any]]] = []
        later: list[tuple[WriteOp, asyncio.Future[Any]]] = []
        keys: set[str] = set()
        size = 0
        while self._queue and len(batch) < self.max_ops:
            op, fut = self._queue.popleft()
            if fut.done():  # the request was cancelled before its write left
                continue
            if op.key in keys or (batch and size + len(op.value) > self.max_bytes):
                later.append((op, fut))
                if len(later) > self.max_ops:
                    break
                continue
            keys.add(op.key)
            size += len(op.value)
            batch.append((op, fut))
        self._queue.extendleft(reversed(later))
        return batch

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch = self._take()
                if batch:
                    await self._commit_or_stall(batch)
        finally:
            self._inflight -= 1

    async def _commit_or_stall(self, batch: list[tuple[WriteOp, asyncio.Future[Any]]]) -> None:
        """Commit ``batch``; past ``STALL_S`` let it finish on its own and return (the slot
        goes on with the queue)."""
        commit = asyncio.get_running_loop().create_task(self._commit(batch))
        try:
            done, _ = await asyncio.wait({commit}, timeout=STALL_S)
        except asyncio.CancelledError:
            commit.cancel()
            raise
        if done or self._stalled >= MAX_STALLED:
            await commit
            return
        self._stalled += 1
        self._tasks.add(commit)
        commit.add_done_callback(self._unstall)

    def _unstall(self, task: asyncio.Task[None]) -> None:
        self._stalled -= 1
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()  # _commit hands its errors to the writes' futures; nothing is left here

    async def _commit(self, batch: list[tuple[WriteOp, asyncio.Future[Any]]]) -> None:
        BATCH_SIZE.observe(len(batch))
        try:
            if len(batch) == 1:
                results: list[Any] = [await _single(self.backend, batch[0][0])]
            else:
                results = list(await self.backend.write_batch([op for op, _ in batch]))
        except asyncio.CancelledError:
            for _, fut in batch:
                fut.cancel()
            raise
        except Exception as e:  # the whole transaction failed (etcd unreachable, ...)
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(e)
            return
        for (_, fut), res in zip(batch, results):
            if fut.done():
                continue
            if isinstance(res, StorageError):
                fut.set_exception(res)
            else:
                fut.set_result(res)


async def write_one(backend: Backend, op: WriteOp) -> KeyValue:
    """``op`` as the backend's single-write call (raises its StorageError)."""
    if op.kind == "create":
        return await backend.create(op.key, op.value, op.lease)
    if op.kind == "update":
        return await backend.update(op.key, op.value, op.expected_mod_revision, op.lease)
    return await backend.delete(op.key, op.expected_mod_revision)


async def _single(backend: Backend, op: WriteOp) -> KeyValue | StorageError:
    try:
        return await write_one(backend, op)
    except (ConflictError, KeyExistsError, KeyNotFoundError) as e:
        return e
