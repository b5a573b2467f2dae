"""The controller runner: N workers pulling keys from a ``WorkQueue`` and calling a
level-based ``reconcile(key) -> Result``.

Requeue policy lives only here (conventions.md item 2): an exception means a rate-limited
requeue (per-key exponential backoff plus the global bucket); ``Result(requeue_after=s)``
forgets the backoff then re-adds after ``s``; ``Result(requeue=True)`` rate-limits;
``TerminalError`` drops the key and logs it; success forgets. ``done(key)`` always runs in a
``finally``. Controllers (``controlplane.controllers.*``) build one of these each and hand it
to ``manager.Manager``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Awaitable, Callable

from controlplane.client.workqueue import Clock, WorkQueue
from controlplane.log import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class Result:
    """What a reconcile asks of the runner."""

    requeue: bool = False
    requeue_after: float | None = None


class TerminalError(Exception):
    """A failure retrying cannot fix: the key is dropped (and the error logged)."""


Reconciler = Callable[[str], Awaitable["Result | None"]]


class Controller:
    """Runs ``reconcile`` over queued keys with ``workers`` concurrent workers."""

    def __init__(self, name: str, reconcile: Reconciler, *, workers: int = 1, clock: Clock | None = None,
                 queue: WorkQueue | None = None) -> None:
        self.name = name
        self.reconcile = reconcile
        self.workers = workers
        self.queue = queue or WorkQueue(name, clock=clock)
        self.reconciles = 0
        self.errors = 0

    def enqueue(self, key: str) -> None:
        self.queue.add(key)

    def enqueue_after(self, key: str, delay: float) -> None:
        self.queue.add_after(key, delay)

    async def process_one(self, key: str) -> None:
        """Reconcile one key and apply the requeue policy (the worker loop's body)."""
        try:
            self.reconciles += 1
            res = await self.reconcile(key)
            if res is not None and res.requeue_after is not None and res.requeue_after > 0:
                self.queue.forget(key)
                self.queue.add_after(key, res.requeue_after)
            elif res is not None and res.requeue:
                self.queue.add_rate_limited(key)
            else:
                self.queue.forget(key)
        except asyncio.CancelledError:
            raise
        except TerminalError as e:
            self.errors += 1
            self.queue.forget(key)
            log.error("reconcile failed terminally", controller=self.name, key=key, error=str(e))
        except Exception as e:  # noqa: BLE001 - any failure is retried with backoff
            self.errors += 1
            log.warning("reconcile failed, requeueing", controller=self.name, key=key, error=repr(e),
                        retries=self.queue.num_requeues(key))
            self.queue.add_rate_limited(key)
        finally:
            self.queue.done(key)

    async def _worker(self) -> None:
        while True:
            key = await self.queue.get()
            if key is None:
                return
            await self.process_one(key)

    async def start(self, stop_event: asyncio.Event) -> None:
        """Runnable: run the workers until ``stop_event`` is set, then shut the queue down."""
        tasks = [asyncio.create_task(self._worker(), name=f"{self.name}-worker-{i}") for i in range(self.workers)]
        try:
            await stop_event.wait()
        finally:
            self.queue.shutdown()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
