"""Batched writes against a real etcd: ``EtcdBackend.write_batch`` (one transaction, each write
with its own precondition and result, markers only for writes that succeeded) and the
apiserver's ``GroupCommitter`` (concurrent writes coalesce; distinct keys per batch; every
caller gets its own result or error)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from controlplane.apiserver.persistence.group_commit import GroupCommitter
from controlplane.storage.etcd import EtcdBackend
from controlplane.storage.interface import (
    ConflictError, KeyExistsError, KeyNotFoundError, KeyValue, WriteOp, object_key, resource_prefix,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
aio = pytest.mark.asyncio(loop_scope="session")


def _res() -> str:
    return f"gadgets{uuid.uuid4().hex[:8]}"


@aio
async def test_write_batch_gives_each_write_its_own_outcome(backend: EtcdBackend) -> None:
    res = _res()
    k = [object_key("example.com", res, "ns", n) for n in ("a", "b", "c", "d", "e")]
    a = await backend.create(k[0], b"a1")
    c = await backend.create(k[2], b"c1")
    out = await backend.write_batch([
        WriteOp("create", k[0], b"dup"),                    # exists
        WriteOp("create", k[1], b"b1"),                     # ok
        WriteOp("update", k[2], b"c2", c.mod_revision),     # ok
        WriteOp("update", k[3], b"d2", 0),                  # absent
        WriteOp("delete", k[4], b"", 0),                    # absent
    ])
    assert isinstance(out[0], KeyExistsError)
    assert isinstance(out[1], KeyValue) and isinstance(out[2], KeyValue)
    assert out[1].mod_revision == out[2].mod_revision  # one transaction, one revision
    assert out[2].create_revision == c.create_revision
    assert isinstance(out[3], KeyNotFoundError) and isinstance(out[4], KeyNotFoundError)
    assert (await backend.get(k[0])).value == b"a1"  # the failed create changed nothing
    stale = await backend.write_batch([WriteOp("update", k[2], b"c3", c.mod_revision),
                                       WriteOp("delete", k[0], b"", a.mod_revision)])
    assert isinstance(stale[0], ConflictError) and stale[0].current.value == b"c2"
    assert isinstance(stale[1], KeyValue) and stale[1].value == b"a1"  # delete returns the last value
    assert await backend.get(k[0]) is None


@aio
async def test_write_batch_moves_a_resource_marker_only_when_one_of_its_writes_succeeds(
        backend: EtcdBackend) -> None:
    res = _res()
    pfx = resource_prefix("example.com", res)
    a = await backend.create(object_key("example.com", res, "ns", "a"), b"{}")
    out = await backend.write_batch([WriteOp("create", object_key("example.com", res, "ns", "a"), b"{}"),
                                     WriteOp("update", object_key("example.com", res, "ns", "x"), b"{}", 0),
                                     WriteOp("create", "/registry/core/other-" + res + "/ns/y", b"{}")])
    assert isinstance(out[0], KeyExistsError) and isinstance(out[1], KeyNotFoundError)
    written, rev = await backend.last_write_revision(pfx)
    assert written == a.mod_revision and rev == out[2].mod_revision  # all of res's writes failed
    ok = await backend.write_batch([WriteOp("create", object_key("example.com", res, "ns", n), b"{}")
                                    for n in ("p", "q", "r")])
    assert (await backend.last_write_revision(pfx))[0] == ok[0].mod_revision


@aio
async def test_write_batch_rejects_a_key_twice(backend: EtcdBackend) -> None:
    key = object_key("example.com", _res(), "ns", "a")
    with pytest.raises(ValueError):
        await backend.write_batch([WriteOp("create", key, b"1"), WriteOp("update", key, b"2", 0)])


@aio
async def test_group_committer_coalesces_concurrent_writes(backend: EtcdBackend) -> None:
    res = _res()
    gc = GroupCommitter(backend, max_inflight=1)
    try:
        keys = [object_key("example.com", res, "ns", f"o{i}") for i in range(40)]
        created = await asyncio.gather(*(gc.submit(WriteOp("create", k, b"v")) for k in keys))
        revs = {kv.mod_revision for kv in created}
        assert len(revs) < len(keys)  # some shared a transaction
        assert [kv.key for kv in created] == keys
        # the same key twice in one burst: never in one batch, both outcomes well defined
        dup = await asyncio.gather(gc.submit(WriteOp("create", keys[0] + "-n", b"1")),
                                   gc.submit(WriteOp("create", keys[0] + "-n", b"2")),
                                   return_exceptions=True)
        assert sum(isinstance(r, KeyValue) for r in dup) == 1
        assert sum(isinstance(r, KeyExistsError) for r in dup) == 1
        # each caller gets its own error
        results = await asyncio.gather(
            gc.submit(WriteOp("update", keys[1], b"w", created[1].mod_revision)),
            gc.submit(WriteOp("update", keys[2], b"w", created[2].mod_revision - 1)),
            gc.submit(WriteOp("delete", keys[3] + "-absent", b"", 0)),
            return_exceptions=True)
        assert isinstance(results[0], KeyValue)
        assert isinstance(results[1], ConflictError)
        assert isinstance(results[2], KeyNotFoundError)
        assert (await backend.get(keys[1])).value == b"w" and (await backend.get(keys[2])).value == b"v"
    finally:
        await gc.close()
