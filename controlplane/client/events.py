"""EventRecorder: posts core/v1 Events about objects, aggregated like client-go's recorder.

The same (object, type, reason, message, component) seen again within ten minutes bumps the
existing Event's ``count`` and ``lastTimestamp`` (a merge patch) instead of creating a new
one, so a hot loop does not flood the API. Posting happens on a background task (the
recorder is a runnable owned by ``manager.Manager``); ``event()`` never blocks a reconcile.
``kubectl describe`` finds these through ``involvedObject`` field selectors.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime, timezone
from typing import Any

from controlplane.client import resources
from controlplane.client.rest import ApiStatusError, RestClient
from controlplane.log import get_logger

log = get_logger(__name__)

AGGREGATE_WINDOW_S = 600.0
SPAM_BURST = 25  # client-go's EventSourceObjectSpamFilter: 25 events per object, then 1 / 5 min
SPAM_REFILL_PER_S = 1.0 / 300.0


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class EventRecorder:
    """``recorder.event(obj, "Normal", "SuccessfulCreate", "Created pod: x")``."""

    def __init__(self, client: RestClient, component: str, *, host: str = "", max_pending: int = 5000) -> None:
        self.client = client
        self.component = component
        self.host = host
        self._pending: asyncio.Queue[tuple[dict, str, str, str]] = asyncio.Queue(max_pending)
        # aggregation key -> (event name, namespace, count, last seen monotonic)
        self._seen: dict[tuple, tuple[str, str, int, float]] = {}
        self.posted = 0
        self.dropped = 0
        self._spam: dict[str, tuple[float, float]] = {}  # object uid/name -> (tokens, last)

    def _allow(self, obj: dict) -> bool:
        md = obj.get("metadata") or {}
        k = md.get("uid") or f"{md.get('namespace')}/{md.get('name')}"
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
        if not self._allow(obj):
            self.dropped += 1
            return
        try:
            self._pending.put_nowait((obj, etype, reason, message))
        except asyncio.QueueFull:
            log.warning("event dropped", reason=reason, message=message)

    async def start(self, stop_event: asyncio.Event) -> None:
        stopper = asyncio.create_task(stop_event.wait())
        try:
            while True:
                getter = asyncio.create_task(self._pending.get())
                done, _ = await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    await asyncio.gather(getter, return_exceptions=True)
                    return
                obj, etype, reason, message = getter.result()
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
                self._seen[agg] = (name, pns, count + 1, mono)
                self.posted += 1
                return
            except ApiStatusError as e:
                if not e.not_found:
                    raise
        name = f"{ref['name']}.{uuid.uuid4().hex[:16]}"
        ev = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": ns},
            "involvedObject": ref, "reason": reason, "message": message, "type": etype,
            "source": {"component": self.component, **({"host": self.host} if self.host else {})},
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
            "reportingComponent": self.component, "reportingInstance": self.host or self.component,
        }
        await self.client.create(resources.EVENTS, ev, ns)
        self._seen[agg] = (name, ns, 1, mono)
        self.posted += 1
        if len(self._seen) > 4096:
            cutoff = mono - AGGREGATE_WINDOW_S
            self._seen = {k: v for k, v in self._seen.items() if v[3] >= cutoff}
