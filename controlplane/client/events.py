"""EventRecorder: posts core/v1 Events about objects, aggregated like client-go's recorder.

The same (object, type, reason, message, component) seen again within ten minutes bumps the
existing Event's ``count`` and ``lastTimestamp`` (a merge patch) instead of creating a new
one, so a hot loop does not flood the API; the aggregation memory is an LRU of 4096 keys, as
client-go's. Posting happens on background tasks (the recorder is a runnable owned by
``manager.Manager``); ``event()`` never blocks a reconcile. A few workers post concurrently
(the scheduler records an Event per bound pod, hundreds per second); all Events about one
object go through the same worker, in order, so aggregation behaves as with a single one.
``kubectl describe`` finds these through ``involvedObject`` field selectors.

``build`` + ``sent`` serve a caller that delivers an Event by another request it makes anyway
(the scheduler's Scheduled Event rides in the pod's Binding, which this project's apiserver
turns into the same Event create): the same spam filter, name and body as a posted one, and the
same aggregation bookkeeping once it was delivered.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from controlplane.client import resources
from controlplane.client.rest import ApiStatusError, RestClient
from controlplane.log import get_logger
from controlplane.machinery.timestamps import now_rfc3339

log = get_logger(__name__)

AGGREGATE_WINDOW_S = 600.0
AGGREGATE_KEYS = 4096  # client-go's eventCache size
DROP_LOG_INTERVAL_S = 10.0
SPAM_BURST = 25  # client-go's EventSourceObjectSpamFilter: 25 events per object, then 1 / 5 min
SPAM_REFILL_PER_S = 1.0 / 300.0


class EventRecorder:
    """``recorder.event(obj, "Normal", "SuccessfulCreate", "Created pod: x")``."""

    def __init__(self, client: RestClient, component: str, *, host: str = "", max_pending: int = 5000,
                 workers: int = 4) -> None:
        self.client = client
        self.component = component
        self.host = host
        n = max(1, workers)
        self._queues: list[asyncio.Queue[tuple[dict, str, str, str]]] = [
            asyncio.Queue(max(1, max_pending // n)) for _ in range(n)]
        # aggregation key -> (event name, namespace, count, last seen monotonic), oldest first
        self._seen: dict[tuple, tuple[str, str, int, float]] = {}
        self.posted = 0
        self.dropped = 0
        self.overflowed = 0  # dropped because the queue was full
        self._overflow_logged = -DROP_LOG_INTERVAL_S
        self._spam: dict[str, tuple[float, float]] = {}  # object uid/name -> (tokens, last)
        self._last_nanos = 0

    def _unique_nanos(self) -> int:
        """Unix time in ns, strictly increasing within this recorder (names never collide)."""
        t = max(time.time_ns(), self._last_nanos + 1)
        self._last_nanos = t
        return t

    @staticmethod
    def _object_key(obj: dict) -> str:
        md = obj.get("metadata") or {}
        return md.get("uid") or f"{md.get('namespace')}/{md.get('name')}"

    def _allow(self, k: str) -> bool:
        now = time.monotonic()
        tokens, last = self._spam.get(k, (float(SPAM_BURST), now))
        tokens = min(float(SPAM_BURST), tokens + (now - last) * SPAM_REFILL_PER_S)
        if tokens < 1.0:
            self._spam[k] = (tokens, now)
            return False
        self._spam[k] = (tokens - 1.0, now)
        if len(self._spam) > 20000:
            self._spam.clear()
        return True

    def event(self, obj: dict, etype: str, reason: str, message: str) -> None:
        """Record an Event about ``obj`` (queued; dropped with a log line if the queue is full,
        or silently past the per-object spam budget, as client-go does)."""
        k = self._object_key(obj)
        if not self._allow(k):
            self.dropped += 1
            return
        try:
            self._queues[hash(k) % len(self._queues)].put_nowait((obj, etype, reason, message))
        except asyncio.QueueFull:
            # overloaded: drop (as client-go's broadcaster does) and say so at most every 10 s
            self.overflowed += 1
            now = time.monotonic()
            if now - self._overflow_logged >= DROP_LOG_INTERVAL_S:
                self._overflow_logged = now
                log.warning("event dropped", reason=reason, message=message, dropped_total=self.overflowed)

    def build(self, obj: dict, etype: str, reason: str, message: str) -> dict | None:
        """The Event :meth:`event` would post about ``obj`` when that is a new Event within the
        object's spam budget (the budget is charged); the caller delivers it, then calls
        :meth:`sent`. None when it would aggregate with an earlier one or be dropped: the
        caller then records it with :meth:`event`, which does either."""
        ref = self._involved(obj)
        ns = ref.get("namespace") or "default"
        prev = self._seen.get((ref["kind"], ns, ref["name"], ref["uid"], etype, reason, message))
        if prev is not None and time.monotonic() - prev[3] < AGGREGATE_WINDOW_S:
            return None
        if not self._allow(self._object_key(obj)):
            return None  # event() then drops it, as it drops any Event past the budget
        return self._new_event(ref, etype, reason, message, now_rfc3339())

    def sent(self, ev: dict) -> None:
        """``ev`` (from :meth:`build`) was stored: remembered for aggregation as a posted one."""
        ref = ev["involvedObject"]
        ns = ev["metadata"]["namespace"]
        self._remember((ref["kind"], ns, ref["name"], ref["uid"], ev["type"], ev["reason"], ev["message"]),
                       ev["metadata"]["name"], ns, 1, time.monotonic())

    def _new_event(self, ref: dict[str, Any], etype: str, reason: str, message: str, now: str) -> dict[str, Any]:
        ns = ref.get("namespace") or "default"
        name = f"{ref['name']}.{self._unique_nanos():x}"  # client-go: <object>.<UnixNano in hex>
        return {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": ns},
            "involvedObject": ref, "reason": reason, "message": message, "type": etype,
            "source": {"component": self.component, **({"host": self.host} if self.host else {})},
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
            "reportingComponent": self.component, "reportingInstance": self.host or self.component,
        }

    def _remember(self, agg: tuple, name: str, ns: str, count: int, mono: float) -> None:
        self._seen.pop(agg, None)
        self._seen[agg] = (name, ns, count, mono)
        self.posted += 1
        while len(self._seen) > AGGREGATE_KEYS:  # least recently used first
            del self._seen[next(iter(self._seen))]

    async def emit(self, obj: dict, etype: str, reason: str, message: str) -> None:
        """Post one Event now and wait for it (one-shot commands, which run no recorder loop);
        aggregated like :meth:`event`. Raises ``ApiStatusError`` if the API refuses it."""
        await self._post(obj, etype, reason, message)

    async def start(self, stop_event: asyncio.Event) -> None:
        workers = [asyncio.ensure_future(self._worker(q, stop_event)) for q in self._queues]
        try:
            await asyncio.gather(*workers)
        finally:
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    async def _worker(self, queue: asyncio.Queue, stop_event: asyncio.Event) -> None:
        """Post the Events of one queue in order; waits (one task) only when it is empty."""
        stopper = asyncio.ensure_future(stop_event.wait())
        try:
            while not stop_event.is_set():
                if queue.empty():
                    getter = asyncio.ensure_future(queue.get())
                    done, _ = await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                    if getter not in done:
                        getter.cancel()
                        await asyncio.gather(getter, return_exceptions=True)
                        return
                    obj, etype, reason, message = getter.result()
                else:
                    obj, etype, reason, message = queue.get_nowait()
                try:
                    await self._post(obj, etype, reason, message)
                except ApiStatusError as e:
                    log.warning("event post failed", reason=reason, error=str(e))
        finally:
            stopper.cancel()

    def _involved(self, obj: dict) -> dict[str, Any]:
        md = obj.get("metadata") or {}
        ref = {"kind": obj.get("kind", ""), "apiVersion": obj.get("apiVersion", ""), "name": md.get("name", ""),
               "uid": md.get("uid", ""), "resourceVersion": md.get("resourceVersion", "")}
        if md.get("namespace"):
            ref["namespace"] = md["namespace"]
        return ref

    async def _post(self, obj: dict, etype: str, reason: str, message: str) -> None:
        ref = self._involved(obj)
        ns = ref.get("namespace") or "default"
        agg = (ref["kind"], ns, ref["name"], ref["uid"], etype, reason, message)
        now = now_rfc3339()
        mono = time.monotonic()
        prev = self._seen.get(agg)
        if prev is not None and mono - prev[3] < AGGREGATE_WINDOW_S:
            name, pns, count, _ = prev
            try:
                await self.client.patch(resources.EVENTS, name, {"count": count + 1, "lastTimestamp": now}, pns)
                self._remember(agg, name, pns, count + 1, mono)
                return
            except ApiStatusError as e:
                if not e.not_found:
                    raise
        ev = self._new_event(ref, etype, reason, message, now)
        await self.client.create(resources.EVENTS, ev, ns)
        self._remember(agg, ev["metadata"]["name"], ns, 1, mono)
