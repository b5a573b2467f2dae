"""``eventually``: poll a condition (a plain or async callable) until it holds, for the client
machinery tests."""

from __future__ import annotations

import asyncio


async def eventually(check, timeout: float = 20.0, interval: float = 0.05):
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        v = check()
        if asyncio.iscoroutine(v):
            v = await v
        if v:
            return v
        await asyncio.sleep(interval)
    raise AssertionError("condition not met")
