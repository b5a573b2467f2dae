"""Periodic compaction of etcd's history, as kube-apiserver does it.

Every ``interval`` (5 min by default) the compactor compacts up to the revision it saw at the
previous tick, so about one interval of history stays available for watches that resume
(older resourceVersions get "410 Gone"); ``min_retain_revisions`` additionally keeps at least
that many recent revisions. A runnable: ``await start(stop_event)`` runs until the event is
set; or ``launch()`` / ``await stop()`` for an owned task (kube-apiserver's compactor lives in
its storage layer too: k8s.io/apiserver/pkg/storage/etcd3/compact.go). Neighbours: the
``Backend`` (``compact``/``current_revision``), ``server/app.py`` (the primary worker runs it).

API:
    c = Compactor(backend, interval=300.0, min_retain_revisions=1000)
    await c.compact_once() -> int | None      # the revision compacted, if any
    await c.start(stop_event)                 # or: c.launch(); ...; await c.stop()
"""

from __future__ import annotations

import asyncio

from controlplane.log import get_logger
from controlplane.storage.interface import Backend, CompactedError

log = get_logger(__name__)


class Compactor:
    def __init__(self, backend: Backend, interval: float = 300.0, min_retain_revisions: int = 1000) -> None:
        self.backend = backend
        self.interval = interval
        self.min_retain_revisions = min_retain_revisions
        self._prev_tick_rev = 0
        self.last_compacted = 0
        self._task: asyncio.Task | None = None

    async def compact_once(self) -> int | None:
        """One tick: compact up to the revision seen at the previous tick (bounded by the
        retention), then remember the current revision for the next tick."""
        cur = await self.backend.current_revision()
        target = min(self._prev_tick_rev, cur - self.min_retain_revisions)
        self._prev_tick_rev = cur
        if target <= self.last_compacted or target <= 1:
            return None
        try:
            await self.backend.compact(target)
        except CompactedError:
            log.info("already compacted (another apiserver?)", revision=target)
        self.last_compacted = target
        log.info("compacted etcd history", revision=target, current=cur)
        return target

    async def start(self, stop_event: asyncio.Event | None = None) -> None:
        stop_event = stop_event or asyncio.Event()
        while not stop_event.is_set():
            try:
                await self.compact_once()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # etcd briefly unavailable: try again next tick
                log.warning("compaction failed", error=repr(e))
            try:
                await asyncio.wait_for(stop_event.wait(), self.interval)
            except asyncio.TimeoutError:
                pass

    def launch(self) -> asyncio.Task:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.start(), name="etcd-compactor")
        return self._task

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
