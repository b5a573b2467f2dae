"""Hypothesis properties of the work queue driven by real asyncio workers: a key is never
processed by two workers at once, and no added key is lost (each key added is processed at
least once after its last add)."""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controlplane.client.controller import Controller, Result

ops = st.lists(
    st.tuples(st.sampled_from(["add", "add_after", "rate_limited", "yield"]), st.integers(0, 5)),
    min_size=1, max_size=60,
)


async def _run(script, workers: int, fail_every: int) -> None:
    active: set[str] = set()
    violations: list[str] = []
    last_add: dict[str, int] = {}
    processed_after: dict[str, int] = {}
    tick = 0
    calls = 0

    async def reconcile(key: str) -> Result:
        nonlocal tick, calls
        if key in active:
            violations.append(key)
        active.add(key)
        start = tick
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        active.discard(key)
        processed_after[key] = max(processed_after.get(key, -1), start)
        calls += 1
        if fail_every and calls % fail_every == 0:
            raise RuntimeError("transient")
        return Result()

    ctrl = Controller("prop", reconcile, workers=workers)
    ctrl.queue.backoff.base = 0.0005
    ctrl.queue.backoff.maximum = 0.002
    stop = asyncio.Event()
    runner = asyncio.create_task(ctrl.start(stop))
    for op, n in script:
        key = f"k{n}"
        tick += 1
        if op == "add":
            last_add[key] = tick
            ctrl.enqueue(key)
        elif op == "add_after":
            last_add[key] = tick
            ctrl.enqueue_after(key, 0.001)
        elif op == "rate_limited":
            last_add[key] = tick
            ctrl.queue.add_rate_limited(key)
        else:
            await asyncio.sleep(0)
    tick += 1
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while loop.time() < deadline:
        pending = [k for k, t in last_add.items() if processed_after.get(k, -1) < t]
        q = ctrl.queue
        if not pending and not len(q) and not q.processing() and not q.waiting():
            break
        await asyncio.sleep(0.002)
    stop.set()
    await runner
    assert not violations, f"processed concurrently: {violations}"
    lost = [k for k, t in last_add.items() if processed_after.get(k, -1) < t]
    assert not lost, f"keys lost (never processed after their last add): {lost}"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(script=ops, workers=st.integers(1, 4), fail_every=st.sampled_from([0, 3, 7]))
def test_no_concurrent_processing_and_no_lost_keys(script, workers, fail_every):
    asyncio.run(_run(script, workers, fail_every))
