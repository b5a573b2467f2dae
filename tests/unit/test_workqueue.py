"""Work queue semantics (client-go): collapse, no concurrent processing, delays, backoff."""

from __future__ import annotations

import asyncio

import pytest

from controlplane.client.controller import Controller, Result, TerminalError
from controlplane.client.workqueue import ExponentialBackoff, FakeClock, TokenBucket, WorkQueue


def make_queue(**kw) -> tuple[WorkQueue, FakeClock]:
    clock = FakeClock()
    return WorkQueue("test", clock=clock, **kw), clock


def test_duplicate_adds_collapse():
    q, _ = make_queue()
    for k in ["a", "b", "a", "a", "b", "c"]:
        q.add(k)
    assert [q.get_nowait() for _ in range(3)] == ["a", "b", "c"]
    assert q.get_nowait() is None


def test_key_readded_while_processing_waits_for_done():
    q, _ = make_queue()
    q.add("a")
    assert q.get_nowait() == "a"
    q.add("a")
    assert q.get_nowait() is None, "a key must not be handed out while it is processing"
    q.done("a")
    assert q.get_nowait() == "a"
    q.done("a")
    assert q.get_nowait() is None


def test_done_without_readd_does_not_requeue():
    q, _ = make_queue()
    q.add("a")
    q.done(q.get_nowait())
    assert len(q) == 0


def test_add_after_fires_on_clock():
    q, clock = make_queue()
    q.add_after("a", 5)
    assert q.get_nowait() is None and "a" in q.waiting()
    clock.step(4.9)
    assert q.get_nowait() is None
    clock.step(0.2)
    assert q.get_nowait() == "a"


def test_add_after_earliest_wins():
    q, clock = make_queue()
    q.add_after("a", 10)
    q.add_after("a", 2)
    q.add_after("a", 7)
    clock.step(2)
    assert q.get_nowait() == "a"
    q.done("a")
    clock.step(10)
    assert q.get_nowait() is None, "superseded timers must not re-add"


@pytest.mark.parametrize("failures,expected", [(0, 0.005), (1, 0.01), (2, 0.02), (10, 5.12), (30, 1000.0), (200, 1000.0)],
                         ids=lambda v: str(v))
def test_exponential_backoff(failures, expected):
    b = ExponentialBackoff(0.005, 1000.0)
    for _ in range(failures):
        b.when("k")
    assert b.when("k") == pytest.approx(expected)
    b.forget("k")
    assert b.when("k") == pytest.approx(0.005)


def test_token_bucket_burst_then_rate():
    clock = FakeClock()
    bucket = TokenBucket(clock, qps=10, burst=3)
    assert [bucket.reserve() for _ in range(3)] == [0, 0, 0]
    assert bucket.reserve() == pytest.approx(0.1)
    assert bucket.reserve() == pytest.approx(0.2)
    clock.step(10)
    assert bucket.reserve() == 0


def test_rate_limited_uses_max_of_backoff_and_bucket():
    q, clock = make_queue(qps=1, burst=1)
    q.add_rate_limited("a")  # backoff 5 ms, bucket 0
    q.add_rate_limited("b")  # backoff 5 ms, bucket 1 s
    clock.step(0.006)
    assert q.get_nowait() == "a" and q.get_nowait() is None
    clock.step(1)
    assert q.get_nowait() == "b"
    assert q.num_requeues("a") == 1
    q.forget("a")
    assert q.num_requeues("a") == 0


def test_shutdown_ignores_adds():
    q, _ = make_queue()
    q.shutdown()
    q.add("a")
    q.add_after("b", 1)
    assert len(q) == 0 and not q.waiting()


async def test_get_blocks_until_add_and_returns_none_on_shutdown():
    q = WorkQueue("test-async")
    getter = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    assert not getter.done()
    q.add("x")
    assert await asyncio.wait_for(getter, 1) == "x"
    getter = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.shutdown()
    assert await asyncio.wait_for(getter, 1) is None


async def test_controller_requeue_policy():
    clock = FakeClock()
    outcomes = {"ok": Result(), "later": Result(requeue_after=30), "again": Result(requeue=True)}
    seen: list[str] = []

    async def reconcile(key: str) -> Result | None:
        seen.append(key)
        if key == "boom":
            raise RuntimeError("boom")
        if key == "fatal":
            raise TerminalError("nope")
        return outcomes[key]

    c = Controller("policy", reconcile, clock=clock)
    for k in ["ok", "later", "again", "boom", "fatal"]:
        await c.process_one(k)  # process_one does done(); mark processing first as get() would
    q = c.queue
    assert q.num_requeues("ok") == 0
    assert "later" in q.waiting() and q.num_requeues("later") == 0
    assert "again" in q.waiting() and q.num_requeues("again") == 1
    assert "boom" in q.waiting() and q.num_requeues("boom") == 1
    assert "fatal" not in q.waiting()
    clock.step(31)
    got = {q.get_nowait() for _ in range(3)}
    assert got == {"later", "again", "boom"}
    assert c.errors == 2
