"""``controlplane.client.retry``: client-go's RetryOnConflict / OnError with a fake sleep."""

from __future__ import annotations

import pytest

from controlplane.client import retry
from controlplane.client.rest import ApiStatusError

CONFLICT = ApiStatusError(409, "Conflict", "the object has been modified")
EXISTS = ApiStatusError(409, "AlreadyExists", "exists")
NOT_FOUND = ApiStatusError(404, "NotFound", "gone")


class Script:
    """An async callable that raises the scripted errors in turn, then returns ``"ok"``."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


class FakeSleep:
    def __init__(self) -> None:
        self.slept: list[float] = []

    async def __call__(self, s: float) -> None:
        self.slept.append(s)


@pytest.mark.parametrize("errors,calls,outcome", [
    ([], 1, "ok"),
    ([CONFLICT], 2, "ok"),
    ([CONFLICT] * 4, 5, "ok"),  # DefaultRetry: 5 tries
    ([CONFLICT] * 5, 5, CONFLICT),  # out of tries: the last conflict is raised
    ([NOT_FOUND], 1, NOT_FOUND),  # not a conflict: raised at once
    ([EXISTS], 1, EXISTS),  # AlreadyExists is a 409 but not a Conflict
    ([CONFLICT, NOT_FOUND], 2, NOT_FOUND),
], ids=["first-try", "one-conflict", "four-conflicts", "exhausted", "not-found", "already-exists", "conflict-then-other"])
async def test_retry_on_conflict(errors, calls, outcome):
    fn, sleep = Script(*errors), FakeSleep()
    if isinstance(outcome, Exception):
        with pytest.raises(ApiStatusError) as ei:
            await retry.retry_on_conflict(fn, sleep=sleep)
        assert ei.value is outcome
    else:
        assert await retry.retry_on_conflict(fn, sleep=sleep) == outcome
    assert fn.calls == calls
    assert len(sleep.slept) == min(calls - 1, retry.DEFAULT_RETRY.steps - 1)
    assert all(0.010 <= s <= 0.011 for s in sleep.slept)  # 10 ms, up to 10% jitter


@pytest.mark.parametrize("backoff,want", [
    (retry.DEFAULT_RETRY, [0.01, 0.01, 0.01, 0.01]),
    (retry.DEFAULT_BACKOFF, [0.01, 0.05, 0.25]),
    (retry.Backoff(steps=4, duration=1.0, factor=10.0, cap=5.0), [1.0, 5.0, 5.0]),
    (retry.Backoff(steps=1, duration=1.0), []),
], ids=["default-retry", "default-backoff", "capped", "one-step"])
def test_backoff_delays_without_jitter(backoff, want):
    assert backoff.delays(rng=lambda: 0.0) == pytest.approx(want)


async def test_on_error_uses_the_retriable_test():
    fn, sleep = Script(NOT_FOUND, NOT_FOUND), FakeSleep()
    assert await retry.on_error(retry.DEFAULT_BACKOFF, lambda e: getattr(e, "not_found", False), fn, sleep=sleep) == "ok"
    assert fn.calls == 3 and len(sleep.slept) == 2 and sleep.slept[1] >= 0.05
