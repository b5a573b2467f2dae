"""Retrying a read-modify-write on a conflict, as client-go's ``util/retry``.

``retry_on_conflict(fn)`` runs ``fn`` (an async callable that reads the object, changes it and
writes it with the resourceVersion it read) until it succeeds, fails with something other than
a 409 Conflict, or the backoff runs out; then the last error is raised. ``DEFAULT_RETRY`` is
client-go's ``retry.DefaultRetry`` (5 tries, 10 ms apart, 10% jitter), the backoff meant for
conflicts; ``DEFAULT_BACKOFF`` is ``retry.DefaultBackoff`` (4 tries, 10 ms x 5 per step) for
errors that need time to clear. ``on_error`` is ``retry.OnError`` for any retriable test.

``update_with_retry`` is the usual caller: GET, mutate a copy, PUT, again on a conflict.
Used by the controllers and the node agent; the sleep is injectable for tests.
"""

from __future__ import annotations

import asyncio
import copy
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from controlplane.client.resources import Resource
from controlplane.client.rest import ApiStatusError, RestClient

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """apimachinery's ``wait.Backoff``: ``steps`` tries; the pause starts at ``duration``
    seconds, is multiplied by ``factor`` after each try (capped at ``cap`` when set) and gets up
    to ``jitter`` x itself added at random."""

    steps: int
    duration: float
    factor: float = 1.0
    jitter: float = 0.0
    cap: float | None = None

    def delays(self, rng: Callable[[], float] = random.random) -> list[float]:
        """The pauses between the ``steps`` tries (``steps - 1`` of them)."""
        out, d = [], self.duration
        for _ in range(max(0, self.steps - 1)):
            out.append(d + (d * self.jitter * rng() if self.jitter > 0 else 0.0))
            d = d * self.factor if self.factor else d
            if self.cap is not None:
                d = min(d, self.cap)
        return out


DEFAULT_RETRY = Backoff(steps=5, duration=0.010, factor=1.0, jitter=0.1)
DEFAULT_BACKOFF = Backoff(steps=4, duration=0.010, factor=5.0, jitter=0.1)


def is_conflict(e: BaseException) -> bool:
    return isinstance(e, ApiStatusError) and e.conflict


async def on_error(backoff: Backoff, retriable: Callable[[BaseException], bool], fn: Callable[[], Awaitable[T]],
                   *, sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> T:
    """``retry.OnError``: ``fn`` again after each pause of ``backoff`` while it raises an error
    ``retriable`` accepts; the last error is raised when the tries run out."""
    delays = backoff.delays()
    for attempt in range(max(1, backoff.steps)):
        try:
            return await fn()
        except Exception as e:  # noqa: BLE001 - re-raised unless retriable
            if not retriable(e) or attempt >= len(delays):
                raise
        await sleep(delays[attempt])
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


async def retry_on_conflict(fn: Callable[[], Awaitable[T]], backoff: Backoff = DEFAULT_RETRY, *,
                            sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> T:
    """``retry.RetryOnConflict``: ``fn`` again while it fails with a 409 Conflict."""
    return await on_error(backoff, is_conflict, fn, sleep=sleep)


async def update_with_retry(client: RestClient, res: Resource, name: str, namespace: str | None,
                            mutate: Callable[[dict], object], *, subresource: str | None = None,
                            current: dict | None = None, backoff: Backoff = DEFAULT_RETRY) -> dict:
    """GET (the first try may start from ``current``), ``mutate`` a copy in place, PUT with the
    resourceVersion read; on a conflict start again from a fresh GET. Returns the written object."""
    first = [current]

    async def attempt() -> dict:
        obj = first[0] if first[0] is not None else await client.get(res, name, namespace)
        first[0] = None
        obj = copy.deepcopy(obj)
        mutate(obj)
        return await client.update(res, obj, subresource=subresource)

    return await retry_on_conflict(attempt, backoff)
