"""The three-part scheduling queue (as kube-scheduler's PriorityQueue).

- *active*: a heap in the order of the profiles' QueueSort plugin (``sort_key``; the
  ``PrioritySort`` plugin: priority, high first, then arrival time);
- *backoff*: pods that failed recently wait 1 s, 2 s, 4 s … up to 10 s per attempt;
- *unschedulable*: pods no node fits; they move back (through backoff if still backing off)
  when a cluster event that one of the rejecting plugins declared happens (``Node/Add``,
  ``Pod/Delete`` …), or after 5 minutes at the latest.

A pod that failed while a move request arrived during its cycle goes to backoff rather
than unschedulable (it might fit now). The clock is injectable for tests.
Neighbours: ``scheduler`` (pops pods, reports failures, forwards informer events).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Any, Callable

from prometheus_client import Gauge

from schedulers.framework.podinfo import PodInfo

INITIAL_BACKOFF_S = 1.0
MAX_BACKOFF_S = 10.0
UNSCHEDULABLE_MAX_S = 300.0

PENDING = Gauge("scheduler_pending_pods", "Number of pending pods, by the queue type.", ["queue"])


def _resolve(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(None)


class SchedulingQueue:
    def __init__(self, sort_key: Callable[[PodInfo], Any], clock: Callable[[], float] = time.monotonic,
                 plugin_events: dict[str, tuple[str, ...]] | None = None) -> None:
        self.sort_key = sort_key
        self.clock = clock
        self.plugin_events = plugin_events or {}
        self._seq = itertools.count()
        self._active: list[tuple[Any, int, str]] = []
        self._in_active: set[str] = set()
        self._backoff: list[tuple[float, int, str]] = []
        self._in_backoff: set[str] = set()
        self._unsched: dict[str, tuple[float, frozenset[str]]] = {}
        self.pods: dict[str, PodInfo] = {}
        self._waiter: asyncio.Future | None = None
        self.scheduling_cycle = 0
        self._move_cycle = -1
        self.closed = False

    # ----------------------------------------------------------------- bookkeeping
    def _push_active(self, p: PodInfo) -> None:
        self._unsched.pop(p.key, None)
        self._in_backoff.discard(p.key)
        if p.key not in self._in_active:
            self._in_active.add(p.key)
            heapq.heappush(self._active, (self.sort_key(p), next(self._seq), p.key))
        self._wake()

    def _push_backoff(self, p: PodInfo) -> None:
        self._unsched.pop(p.key, None)
        self._in_backoff.add(p.key)
        heapq.heappush(self._backoff, (self.backoff_until(p), next(self._seq), p.key))
        self._wake()

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def backoff_until(self, p: PodInfo) -> float:
        d = min(MAX_BACKOFF_S, INITIAL_BACKOFF_S * (2 ** max(0, p.attempts - 1)))
        return p.last_failure + d if p.last_failure >= 0 else self.clock()

    def update_metrics(self) -> None:
        PENDING.labels("active").set(len(self._in_active))
        PENDING.labels("backoff").set(len(self._in_backoff))
        PENDING.labels("unschedulable").set(len(self._unsched))

    def __len__(self) -> int:
        return len(self.pods)

    def where(self, key: str) -> str | None:
        if key in self._in_active:
            return "active"
        if key in self._in_backoff:
            return "backoff"
        if key in self._unsched:
            return "unschedulable"
        return "in-flight" if key in self.pods else None

    # ----------------------------------------------------------------- informer side
    def add(self, p: PodInfo) -> None:
        old = self.pods.get(p.key)
        if old is not None:
            return self.update(p)
        p.timestamp = p.timestamp or self.clock()
        self.pods[p.key] = p
        self._push_active(p)

    def update(self, p: PodInfo) -> None:
        old = self.pods.get(p.key)
        if old is None:
            return self.add(p)
        p.timestamp, p.attempts = old.timestamp, old.attempts
        p.last_failure = old.last_failure
        self.pods[p.key] = p
        if p.key in self._unsched and (old.obj.get("spec") != p.obj.get("spec") or old.labels != p.labels):
            self._push_backoff(p) if self.backoff_until(p) > self.clock() else self._push_active(p)

    def delete(self, key: str) -> None:
        self.pods.pop(key, None)
        self._in_active.discard(key)
        self._in_backoff.discard(key)
        self._unsched.pop(key, None)

    def on_event(self, event: str) -> int:
        """A cluster event: move the unschedulable pods it may help. Returns how many moved."""
        self._move_cycle = self.scheduling_cycle
        moved = 0
        now = self.clock()
        for key, (_, plugins) in list(self._unsched.items()):
            if plugins and not any(event in self.plugin_events.get(pl, ()) or "*" in self.plugin_events.get(pl, ())
                                   for pl in plugins):
                continue
            p = self.pods[key]
            self._push_backoff(p) if self.backoff_until(p) > now else self._push_active(p)
            moved += 1
        return moved

    # ----------------------------------------------------------------- scheduler side
    def flush(self) -> None:
        now = self.clock()
        while self._backoff and self._backoff[0][0] <= now:
            _, _, key = heapq.heappop(self._backoff)
            if key in self._in_backoff and key in self.pods:
                self._push_active(self.pods[key])
        for key, (since, _) in list(self._unsched.items()):
            if now - since >= UNSCHEDULABLE_MAX_S:
                self._push_active(self.pods[key])

    def pop_nowait(self) -> PodInfo | None:
        self.flush()
        while self._active:
            _, _, key = heapq.heappop(self._active)
            if key in self._in_active:
                self._in_active.discard(key)
                p = self.pods.get(key)
                if p is not None:
                    p.attempts += 1
                    self.scheduling_cycle += 1
                    p.cycle = self.scheduling_cycle
                    return p
        return None

    async def pop(self, stop: asyncio.Event | None = None) -> PodInfo | None:
        """Next pod (waits); None once ``stop`` is set."""
        while not self.closed and not (stop is not None and stop.is_set()):
            p = self.pop_nowait()
            if p is not None:
                return p
            self.update_metrics()
            timeout = 1.0
            if self._backoff:
                timeout = max(0.0, min(timeout, self._backoff[0][0] - self.clock()))
            # a future woken by the next push or by a timer: cheaper than wait_for (no task)
            loop = asyncio.get_running_loop()
            self._waiter = waiter = loop.create_future()
            timer = loop.call_later(timeout, _resolve, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
        return None

    def requeue_unschedulable(self, p: PodInfo, plugins: set[str]) -> None:
        """The cycle found no node: unschedulable, or backoff if an event arrived meanwhile."""
        if p.key not in self.pods:
            return
        p.last_failure = self.clock()
        if self._move_cycle >= p.cycle:
            self._push_backoff(p)
        else:
            self._in_active.discard(p.key)
            self._unsched[p.key] = (self.clock(), frozenset(plugins))

    def requeue_error(self, p: PodInfo) -> None:
        """An error (e.g. the binding failed): retry after backoff."""
        if p.key in self.pods:
            p.last_failure = self.clock()
            self._push_backoff(p)

    def done(self, key: str) -> None:
        """The pod was bound: it leaves the queue."""
        self.delete(key)

    def close(self) -> None:
        self.closed = True
        self._wake()
