"""A rate-limited work queue with client-go's semantics, for the controller runner.

- Duplicate keys collapse while waiting (the ``dirty`` set).
- A key is never handed to two workers at once: a key re-added while it is being processed
  (the ``processing`` set) is queued again only when ``done(key)`` is called.
- ``add_after`` delays a key (the earliest pending time wins); ``add_rate_limited`` delays it
  by the max of a per-key exponential backoff (5 ms doubling to 1000 s) and a global token
  bucket (10 qps, burst 100); ``forget`` resets the per-key backoff.
- Metrics ``workqueue_depth``, ``workqueue_adds_total``, ``workqueue_queue_duration_seconds``,
  ``workqueue_work_duration_seconds``, ``workqueue_retries_total`` labelled ``name``.
- The clock is injectable (``FakeClock``) so backoff is tested without sleeping.

Neighbours: ``controller.Controller`` (the worker loop calling ``get``/``done``) and the
informer handlers that ``add`` keys.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import deque
from typing import Any, Callable, Protocol

from prometheus_client import Counter, Gauge, Histogram

DEPTH = Gauge("workqueue_depth", "Current depth of the work queue", ["name"])
ADDS = Counter("workqueue_adds_total", "Total adds handled by the work queue", ["name"])
QUEUE_DURATION = Histogram("workqueue_queue_duration_seconds", "Seconds an item waits before being requested",
                           ["name"], buckets=(1e-5, 1e-4, 1e-3, 0.01, 0.1, 1, 10, 100, 1000))
WORK_DURATION = Histogram("workqueue_work_duration_seconds", "Seconds processing an item takes",
                          ["name"], buckets=(1e-5, 1e-4, 1e-3, 0.01, 0.1, 1, 10, 100, 1000))
RETRIES = Counter("workqueue_retries_total", "Total retries handled by the work queue", ["name"])


class Handle(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def now(self) -> float: ...
    def call_later(self, delay: float, cb: Callable[[], None]) -> Handle: ...


class RealClock:
    """The event loop's monotonic clock."""

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def call_later(self, delay: float, cb: Callable[[], None]) -> Handle:
        return asyncio.get_running_loop().call_later(delay, cb)


class _FakeHandle:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """A manual clock for tests: ``step(seconds)`` advances it and fires due callbacks."""

    def __init__(self, start: float = 0.0) -> None:
        self.t = start
        self._timers: list[tuple[float, int, _FakeHandle, Callable[[], None]]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self.t

    def call_later(self, delay: float, cb: Callable[[], None]) -> Handle:
        h = _FakeHandle()
        heapq.heappush(self._timers, (self.t + max(delay, 0.0), next(self._seq), h, cb))
        return h

    def step(self, seconds: float) -> None:
        target = self.t + seconds
        while self._timers and self._timers[0][0] <= target:
            when, _, h, cb = heapq.heappop(self._timers)
            self.t = max(self.t, when)
            if not h.cancelled:
                cb()
        self.t = target


class ExponentialBackoff:
    """Per-key exponential failure backoff: ``base * 2**failures`` capped at ``maximum``."""

    def __init__(self, base: float = 0.005, maximum: float = 1000.0) -> None:
        self.base, self.maximum = base, maximum
        self.failures: dict[Any, int] = {}

    def when(self, key: Any) -> float:
        n = self.failures.get(key, 0)
        self.failures[key] = n + 1
        return min(self.base * (2 ** min(n, 64)), self.maximum)

    def forget(self, key: Any) -> None:
        self.failures.pop(key, None)

    def num_requeues(self, key: Any) -> int:
        return self.failures.get(key, 0)


class TokenBucket:
    """A global token bucket (``qps`` refill, ``burst`` capacity): the delay before a token."""

    def __init__(self, clock: Clock, qps: float = 10.0, burst: int = 100) -> None:
        self.clock, self.qps, self.burst = clock, qps, burst
        self.tokens = float(burst)
        self.last: float | None = None

    def reserve(self) -> float:
        now = self.clock.now()
        if self.last is not None:
            self.tokens = min(float(self.burst), self.tokens + (now - self.last) * self.qps)
        self.last = now
        self.tokens -= 1.0
        return 0.0 if self.tokens >= 0 else -self.tokens / self.qps


class WorkQueue:
    """Rate-limiting delaying FIFO of hashable keys. ``await get()`` returns None once shut down."""

    def __init__(self, name: str, *, clock: Clock | None = None, base_delay: float = 0.005,
                 max_delay: float = 1000.0, qps: float = 10.0, burst: int = 100) -> None:
        self.name = name
        self.clock: Clock = clock or RealClock()
        self.backoff = ExponentialBackoff(base_delay, max_delay)
        self.bucket = TokenBucket(self.clock, qps, burst)
        self._queue: deque[Any] = deque()
        self._dirty: set[Any] = set()
        self._processing: set[Any] = set()
        self._added_at: dict[Any, float] = {}
        self._started_at: dict[Any, float] = {}
        self._waiting: dict[Any, float] = {}
        self._timers: dict[Any, Handle] = {}
        self._wakeup = asyncio.Event()
        self._shutting_down = False
        self._m_depth = DEPTH.labels(name)
        self._m_adds = ADDS.labels(name)
        self._m_qdur = QUEUE_DURATION.labels(name)
        self._m_wdur = WORK_DURATION.labels(name)
        self._m_retries = RETRIES.labels(name)

    # -- state ----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def processing(self) -> frozenset:
        return frozenset(self._processing)

    def waiting(self) -> frozenset:
        """Keys delayed by ``add_after`` / ``add_rate_limited`` and not yet queued."""
        return frozenset(self._waiting)

    # -- adding ---------------------------------------------------------------------------

    def add(self, key: Any) -> None:
        if self._shutting_down:
            return
        self._m_adds.inc()
        if key in self._dirty:
            return
        self._dirty.add(key)
        self._added_at.setdefault(key, self.clock.now())
        if key in self._processing:
            return
        self._queue.append(key)
        self._m_depth.set(len(self._queue))
        self._wakeup.set()

    def add_after(self, key: Any, delay: float) -> None:
        """Add ``key`` after ``delay`` seconds; an earlier pending time for the key wins."""
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        ready = self.clock.now() + delay
        if key in self._waiting and self._waiting[key] <= ready:
            return
        old = self._timers.pop(key, None)
        if old is not None:
            old.cancel()
        self._waiting[key] = ready
        self._timers[key] = self.clock.call_later(delay, lambda: self._fire(key))

    def ready_at(self, key: Any) -> float | None:
        """When (this queue's clock) ``key``, waiting after an ``add_after``, becomes ready."""
        return self._waiting.get(key)

    def _fire(self, key: Any) -> None:
        self._waiting.pop(key, None)
        self._timers.pop(key, None)
        self.add(key)

    def add_rate_limited(self, key: Any) -> None:
        """Retry ``key`` after max(per-key exponential backoff, global bucket delay)."""
        self._m_retries.inc()
        self.add_after(key, max(self.backoff.when(key), self.bucket.reserve()))

    def forget(self, key: Any) -> None:
        self.backoff.forget(key)

    def num_requeues(self, key: Any) -> int:
        return self.backoff.num_requeues(key)

    # -- consuming ------------------------------------------------------------------------

    def get_nowait(self) -> Any:
        """The next key (marked processing), or None when the queue is empty."""
        if not self._queue:
            return None
        key = self._queue.popleft()
        self._m_depth.set(len(self._queue))
        self._processing.add(key)
        self._dirty.discard(key)
        now = self.clock.now()
        added = self._added_at.pop(key, None)
        if added is not None:
            self._m_qdur.observe(max(now - added, 0.0))
        self._started_at[key] = now
        return key

    async def get(self) -> Any:
        """Wait for the next key; None once the queue is shut down (and drained of waiting gets)."""
        while True:
            if self._shutting_down:
                return None
            if self._queue:
                return self.get_nowait()
            self._wakeup.clear()
            await self._wakeup.wait()

    def done(self, key: Any) -> None:
        """Mark ``key`` processed; if it was re-added meanwhile, queue it again now."""
        self._processing.discard(key)
        started = self._started_at.pop(key, None)
        if started is not None:
            self._m_wdur.observe(max(self.clock.now() - started, 0.0))
        if key in self._dirty and not self._shutting_down:
            self._queue.append(key)
            self._m_depth.set(len(self._queue))
            self._wakeup.set()

    def shutdown(self) -> None:
        self._shutting_down = True
        for h in self._timers.values():
            h.cancel()
        self._timers.clear()
        self._waiting.clear()
        self._wakeup.set()
