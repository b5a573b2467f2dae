"""The lease manager behind Event / SchedulingDecision TTLs (``persistence/leases.py``): one
lease per TTL reused for min(5 % of the TTL, 60 s), granted for TTL + that window."""

from __future__ import annotations

import asyncio

from controlplane.apiserver.persistence.leases import LeaseManager


class FakeBackend:
    def __init__(self) -> None:
        self.granted: list[int] = []

    async def grant_lease(self, ttl: int) -> int:
        self.granted.append(ttl)
        return len(self.granted)


def test_one_lease_per_window():
    now = [1000.0]
    b = FakeBackend()
    lm = LeaseManager(b, clock=lambda: now[0])

    async def go():
        got = [await lm.lease_for(3600)]
        now[0] += 59.0
        got.append(await lm.lease_for(3600))
        now[0] += 2.0  # past the 60 s window
        got.append(await lm.lease_for(3600))
        got.append(await lm.lease_for(20))  # another TTL: its own lease, window 1 s
        now[0] += 1.5
        got.append(await lm.lease_for(20))
        return got

    assert asyncio.run(go()) == [1, 1, 2, 3, 4]
    assert b.granted == [3660, 3660, 21, 21]  # TTL + window: never shorter than the TTL
