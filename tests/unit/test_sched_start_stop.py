"""The scheduler's start waits for its caches or for ``stop``: a scheduler that loses its Lease
while its informers are still listing ends at once instead of waiting forever for a sync that a
stopped informer never reaches."""

from __future__ import annotations

import asyncio

import pytest

from schedulers.framework.scheduler import _synced_or_stopped


class _Inf:
    def __init__(self, synced: bool) -> None:
        self._synced = asyncio.Event()
        if synced:
            self._synced.set()

    async def wait_for_sync(self) -> bool:
        await self._synced.wait()
        return True


@pytest.mark.parametrize("synced, stop_after, expect", [
    ((True, True), None, True),       # all synced, not stopped
    ((True, False), 0.01, False),     # one never syncs, stop comes: ends
    ((False, False), 0.0, False),     # stopped before anything synced
    ((), None, True),                 # nothing to wait for
])
async def test_synced_or_stopped(synced, stop_after, expect):
    stop = asyncio.Event()
    infs = [_Inf(s) for s in synced]
    if stop_after is not None:
        asyncio.get_running_loop().call_later(stop_after, stop.set)
    assert await asyncio.wait_for(_synced_or_stopped(infs, stop), 5) is expect


async def test_synced_later_counts():
    stop = asyncio.Event()
    late = _Inf(False)
    asyncio.get_running_loop().call_later(0.01, late._synced.set)
    assert await asyncio.wait_for(_synced_or_stopped([_Inf(True), late], stop), 5) is True
