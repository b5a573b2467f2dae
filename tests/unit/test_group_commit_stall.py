"""Group commit (``apiserver/persistence/group_commit.py``): a transaction left unanswered (one
sent to an etcd member whose leader was just killed waits for etcd's 7 s request timeout) gives
its slot up after ``STALL_S``, so the writes queued behind it still commit."""

from __future__ import annotations

import asyncio

import pytest

from controlplane.apiserver.persistence import group_commit
from controlplane.storage.interface import KeyValue, WriteOp


class _Writes:
    """The writes part of a ``Backend``: creates of keys in ``hang`` never answer until released."""

    def __init__(self, hang: set[str]) -> None:
        self.hang, self.release, self.rev = hang, asyncio.Event(), 0

    async def create(self, key: str, value: bytes, lease: int = 0) -> KeyValue:
        if key in self.hang:
            await self.release.wait()
        self.rev += 1
        return KeyValue(key, value, self.rev, self.rev)

    async def write_batch(self, ops: list[WriteOp]) -> list[KeyValue]:
        if any(op.key in self.hang for op in ops):
            await self.release.wait()
        self.rev += 1
        return [KeyValue(op.key, op.value, self.rev, self.rev) for op in ops]


@pytest.mark.parametrize("stuck,max_stalled,later_commit", [
    (["a", "b"], 8, True),  # both slots stuck: the queue goes on after STALL_S
    (["a", "b"], 0, False),  # no stalled transaction allowed: the queue waits for them (the old behaviour)
    ([], 8, True),  # nothing stuck
], ids=["stuck-slots-released", "no-release", "idle"])
def test_stuck_transactions_free_their_slots(monkeypatch, stuck, max_stalled, later_commit):
    monkeypatch.setattr(group_commit, "STALL_S", 0.05)
    monkeypatch.setattr(group_commit, "MAX_STALLED", max_stalled)

    async def run() -> None:
        backend = _Writes(set(stuck))
        gc = group_commit.GroupCommitter(backend, max_inflight=2)  # type: ignore[arg-type]
        first = []
        for k in stuck:  # one transaction each: each leaves before the next is submitted
            first.append(asyncio.ensure_future(gc.submit(WriteOp("create", k, b"x"))))
            await asyncio.sleep(0.001)
        later = asyncio.ensure_future(gc.submit(WriteOp("create", "c", b"y")))
        done, _ = await asyncio.wait({later}, timeout=0.5)
        assert bool(done) is later_commit
        backend.release.set()
        results = await asyncio.gather(*first, later)
        assert [kv.key for kv in results] == [*stuck, "c"]
        await gc.close()
        assert gc._stalled == 0 and gc._inflight == 0

    asyncio.run(run())
