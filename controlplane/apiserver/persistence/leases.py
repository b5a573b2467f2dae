"""Time to live for stored objects through etcd leases, as kube-apiserver's
``storage/etcd3/lease_manager.go``: a resource whose strategy declares ``ttl_seconds``
(Events: ``--event-ttl``, 1 h by default; SchedulingDecisions: ``--decision-ttl``) has every
create and update attached to a lease, and etcd deletes the key when the lease expires (the
watch caches see an ordinary DELETE).

Why a manager: granting a lease is an etcd round trip. One lease is reused for every write in
a window of ``min(5 % of the TTL, 60 s)`` and granted for the TTL plus that window, so an
object lives at least its TTL and at most TTL + window; at hundreds of Events per second
that is one grant a minute. Neighbours: ``store.ObjectStore`` (asks for the lease of each
write), ``controlplane.storage.interface.Backend.grant_lease``.
"""

from __future__ import annotations

import asyncio
import time

from controlplane.storage.interface import Backend

REUSE_MAX_S = 60.0
REUSE_SHARE = 0.05


class LeaseManager:
    def __init__(self, backend: Backend, clock=time.monotonic) -> None:
        self.backend = backend
        self.clock = clock
        self._current: dict[int, tuple[int, float]] = {}  # ttl -> (lease id, reused until)
        self._lock = asyncio.Lock()

    @staticmethod
    def reuse_window(ttl: int) -> float:
        return min(REUSE_MAX_S, ttl * REUSE_SHARE)

    async def lease_for(self, ttl: int) -> int:
        """A lease that outlives ``ttl`` seconds from now (0: the backend has none)."""
        got = self._current.get(ttl)
        if got is not None and self.clock() < got[1]:
            return got[0]  # the common case: one dict lookup and a clock read
        window = self.reuse_window(ttl)
        async with self._lock:
            got = self._current.get(ttl)
            if got is not None and self.clock() < got[1]:
                return got[0]
            lease = await self.backend.grant_lease(int(ttl + window + 0.999))
            self._current[ttl] = (lease, self.clock() + window)  # (lease id, reuse it until)
            return lease
