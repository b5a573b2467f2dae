"""EtcdBackend against a real etcd: CRUD with compare-and-set, pagination, gap-free watches
(also across an etcd restart), compaction surfacing as CompactedError, and the replay property
(a watch from revision r yields exactly the writes after r)."""

from __future__ import annotations

import asyncio
import threading
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controlplane.storage.etcd import EtcdBackend
from controlplane.storage.interface import (
    CompactedError,
    ConflictError,
    KeyExistsError,
    FutureRevisionError,
    KeyNotFoundError,
    WatchEvent,
    WriteOp,
    object_key,
    resource_prefix,
    split_key,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
aio = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
def prefix() -> str:
    return f"/t/{uuid.uuid4().hex[:10]}/"


def test_keys_layout() -> None:
    assert object_key("", "pods", "ns", "p") == "/registry/core/pods/ns/p"
    assert object_key("apps", "deployments", "ns", "d") == "/registry/apps/deployments/ns/d"
    assert object_key(None, "nodes", None, "n1") == "/registry/core/nodes/n1"
    assert resource_prefix("", "pods") == "/registry/core/pods/"
    assert resource_prefix("", "pods", "ns") == "/registry/core/pods/ns/"
    assert split_key("/registry/core/pods/ns/p") == ("core", "pods", "ns", "p")
    assert split_key("/registry/core/nodes/n1") == ("core", "nodes", None, "n1")


@aio
async def test_create_get_update_delete(backend: EtcdBackend, prefix: str) -> None:
    k = prefix + "a"
    kv = await backend.create(k, b"v1")
    assert kv.mod_revision == kv.create_revision
    with pytest.raises(KeyExistsError):
        await backend.create(k, b"other")
    got = await backend.get(k)
    assert got == kv
    kv2 = await backend.update(k, b"v2", kv.mod_revision)
    assert kv2.mod_revision > kv.mod_revision and kv2.create_revision == kv.create_revision
    with pytest.raises(ConflictError) as ei:
        await backend.update(k, b"v3", kv.mod_revision)
    assert ei.value.current == kv2
    assert (await backend.get(k)).value == b"v2"  # the failed update wrote nothing
    assert (await backend.get(k, revision=kv.mod_revision)).value == b"v1"
    with pytest.raises(KeyNotFoundError):
        await backend.update(prefix + "missing", b"x", 5)
    with pytest.raises(ConflictError):
        await backend.delete(k, expected_mod_revision=kv.mod_revision)
    deleted = await backend.delete(k, expected_mod_revision=kv2.mod_revision)
    assert deleted.value == b"v2" and deleted.mod_revision > kv2.mod_revision
    assert await backend.get(k) is None
    with pytest.raises(KeyNotFoundError):
        await backend.delete(k)
    kv3 = await backend.create(k, b"again")  # re-creatable after delete
    assert kv3.create_revision == kv3.mod_revision > deleted.mod_revision
    kv4 = await backend.update(k, b"unconditional", 0)
    assert kv4.value == b"unconditional"


@aio
async def test_list_pagination_and_count(backend: EtcdBackend, prefix: str) -> None:
    names = [f"k{i:02d}" for i in range(11)]
    for n in names:
        await backend.create(prefix + n, n.encode())
    await backend.create(prefix[:-1] + "x/other", b"outside")  # a sibling prefix is not listed
    assert await backend.count(prefix) == 11
    full = await backend.list(prefix)
    assert [kv.key for kv in full.items] == [prefix + n for n in names] and not full.more
    seen, start, pages = [], None, 0
    while True:
        page = await backend.list(prefix, revision=full.revision, limit=4, start_key=start)
        pages += 1
        assert page.revision == full.revision
        seen += [kv.key for kv in page.items]
        if not page.more:
            break
        start = page.items[-1].key + "\x00"
    assert seen == [prefix + n for n in names] and pages == 3
    # a list at an older revision sees the old state
    await backend.delete(prefix + "k00")
    old = await backend.list(prefix, revision=full.revision)
    assert len(old.items) == 11
    assert len((await backend.list(prefix)).items) == 10
    with pytest.raises(FutureRevisionError):
        await backend.list(prefix, revision=full.revision + 10_000)


async def _collect(stream, until_rev: int) -> list[WatchEvent]:
    out: list[WatchEvent] = []
    async for batch in stream:
        out += batch
        if out and out[-1].kv.mod_revision >= until_rev:
            break
    return out


@aio
async def test_watch_from_revision_replays_writes(backend: EtcdBackend, prefix: str) -> None:
    start = await backend.current_revision()
    a = await backend.create(prefix + "a", b"1")
    b = await backend.create(prefix + "b", b"2")
    a2 = await backend.update(prefix + "a", b"3", a.mod_revision)
    d = await backend.delete(prefix + "b")
    stream = backend.watch(prefix, start + 1)
    try:
        evs = await asyncio.wait_for(_collect(stream, d.mod_revision), 10)
    finally:
        await stream.aclose()
    assert [(e.type, e.kv.key, e.kv.value, e.kv.mod_revision) for e in evs] == [
        ("PUT", a.key, b"1", a.mod_revision),
        ("PUT", b.key, b"2", b.mod_revision),
        ("PUT", a.key, b"3", a2.mod_revision),
        ("DELETE", b.key, b"2", d.mod_revision),
    ]
    assert evs[0].created and not evs[2].created and evs[2].prev.value == b"1"
    # from the middle: exactly what came after
    stream = backend.watch(prefix, a2.mod_revision)
    try:
        evs = await asyncio.wait_for(_collect(stream, d.mod_revision), 10)
    finally:
        await stream.aclose()
    assert [e.kv.mod_revision for e in evs] == [a2.mod_revision, d.mod_revision]


@aio
async def test_watch_progress_request_reports_revision(backend: EtcdBackend, prefix: str) -> None:
    stream = backend.watch(prefix, await backend.current_revision() + 1)
    batches: list[list[WatchEvent]] = []

    async def consume() -> None:
        async for batch in stream:
            batches.append(batch)

    task = asyncio.create_task(consume())
    other = await backend.create(prefix[:-1] + "-elsewhere/x", b"1")  # not under the prefix
    for _ in range(50):
        stream.request_progress()
        await asyncio.sleep(0.1)
        if stream.progress_revision >= other.mod_revision:
            break
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await stream.aclose()
    assert stream.progress_revision >= other.mod_revision
    assert batches and all(b == [] for b in batches)


@aio
async def test_count_since(backend: EtcdBackend, prefix: str) -> None:
    a = await backend.create(prefix + "a", b"1")
    await backend.create(prefix + "b", b"1")
    assert (await backend.count_since(prefix, a.mod_revision - 1))[:2] == (2, 2)
    modified, total, rev = await backend.count_since(prefix, a.mod_revision)
    assert (modified, total) == (1, 2) and rev >= a.mod_revision + 1
    assert (await backend.count_since(prefix, rev))[:2] == (0, 2)


@aio
async def test_compaction_surfaces_as_compacted_error(fresh_etcd, prefix: str) -> None:
    b = EtcdBackend([fresh_etcd.endpoint])
    try:
        first = await b.create(prefix + "a", b"1")
        for i in range(5):
            await b.update(prefix + "a", str(i).encode(), 0)
        cur = await b.current_revision()
        await b.compact(cur - 1)
        with pytest.raises(CompactedError):
            await b.list(prefix, revision=first.mod_revision)
        with pytest.raises(CompactedError):
            await b.get(prefix + "a", revision=first.mod_revision)
        with pytest.raises(CompactedError) as ei:
            async for _ in b.watch(prefix, first.mod_revision):
                pass
        assert ei.value.compact_revision == cur - 1
        # at or after the compacted revision everything still works
        assert (await b.list(prefix, revision=cur - 1)).items[0].value == b"3"
        stream = b.watch(prefix, cur)
        evs = await asyncio.wait_for(_collect(stream, cur), 10)
        await stream.aclose()
        assert [e.kv.value for e in evs] == [b"4"]
    finally:
        await b.close()


@aio
async def test_watch_survives_etcd_restart(fresh_etcd, prefix: str) -> None:
    b = EtcdBackend([fresh_etcd.endpoint])
    writer = EtcdBackend([fresh_etcd.endpoint])
    try:
        start = await b.current_revision()
        stream = b.watch(prefix, start + 1)
        got: list[WatchEvent] = []

        async def consume() -> None:
            async for batch in stream:
                got.extend(batch)

        task = asyncio.create_task(consume())
        written = [await writer.create(prefix + f"before{i}", b"x") for i in range(5)]
        await asyncio.to_thread(fresh_etcd.stop)
        await asyncio.to_thread(fresh_etcd.start_sync)  # same data dir and ports
        for i in range(5):
            for _ in range(100):
                try:
                    written.append(await writer.create(prefix + f"after{i}", b"y"))
                    break
                except Exception:  # etcd still coming up: the client reconnects
                    await asyncio.sleep(0.1)
        for _ in range(200):
            if got and got[-1].kv.mod_revision >= written[-1].mod_revision:
                break
            await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await stream.aclose()
        assert [e.kv.mod_revision for e in got] == [w.mod_revision for w in written]
        assert [e.kv.key for e in got] == [w.key for w in written]
    finally:
        await b.close()
        await writer.close()


# --- property: the watch stream replays exactly the writes after a revision -----------------

class _LoopThread:
    """A private event loop in a thread, so that Hypothesis can drive async code from a sync test."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro, timeout: float = 30):  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture(scope="module")
def loop_backend(etcd_server):
    lt = _LoopThread()
    b = EtcdBackend([etcd_server.endpoint])
    lt.run(b.start())
    yield lt, b
    lt.run(b.close())
    lt.close()


OPS = st.lists(st.tuples(st.sampled_from(["put", "delete"]), st.sampled_from("abcd"), st.binary(max_size=8)),
               min_size=1, max_size=25)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS, cut=st.integers(min_value=0, max_value=24))
def test_watch_replays_exactly_the_writes_after_a_revision(loop_backend, ops, cut) -> None:
    lt, b = loop_backend
    prefix = f"/prop/{uuid.uuid4().hex[:10]}/"

    async def scenario() -> None:
        writes: list[tuple[str, str, bytes, int]] = []
        present: dict[str, int] = {}
        for op, name, value in ops:
            key = prefix + name
            if op == "put":
                if key in present:
                    kv = await b.update(key, value, present[key])
                else:
                    kv = await b.create(key, value)
                present[key] = kv.mod_revision
                writes.append(("PUT", key, value, kv.mod_revision))
            elif key in present:
                kv = await b.delete(key, present.pop(key))
                writes.append(("DELETE", key, kv.value, kv.mod_revision))
        if not writes:
            return
        i = min(cut, len(writes) - 1)
        stream = b.watch(prefix, writes[i][3])
        try:
            evs = await asyncio.wait_for(_collect(stream, writes[-1][3]), 10)
        finally:
            await stream.aclose()
        assert [(e.type, e.kv.key, e.kv.value, e.kv.mod_revision) for e in evs] == writes[i:]

    lt.run(scenario())


@aio
async def test_compactor_keeps_one_interval_of_history(fresh_etcd, prefix: str) -> None:
    from controlplane.apiserver.persistence.compactor import Compactor

    b = EtcdBackend([fresh_etcd.endpoint])
    try:
        c = Compactor(b, interval=3600, min_retain_revisions=2)
        first = await b.create(prefix + "a", b"first")
        await b.update(prefix + "a", b"0", first.mod_revision)
        assert await c.compact_once() is None  # first tick only remembers the revision
        tick1 = await b.current_revision()
        for i in range(5):
            await b.update(prefix + "a", str(i).encode(), 0)
        assert await c.compact_once() == tick1  # second tick compacts what the first one saw
        with pytest.raises(CompactedError):
            await b.list(prefix, revision=first.mod_revision)
        assert (await b.list(prefix, revision=tick1)).items[0].value == b"0"
        # as a runnable: one tick at start, then stops promptly on the event
        stop = asyncio.Event()
        c2 = Compactor(b, interval=3600, min_retain_revisions=2)
        task = asyncio.create_task(c2.start(stop))
        await asyncio.sleep(0.2)
        stop.set()
        await asyncio.wait_for(task, 5)
        c2.launch()
        await c2.stop()
    finally:
        await b.close()


@aio
async def test_etcd_put_benchmark_helper_reports_a_rate(etcd_server) -> None:
    from controlplane.bench.etcd_puts import etcd_put_per_s

    rate = await etcd_put_per_s(etcd_server.endpoint, n=200, concurrency=8, value_size=64)
    assert rate > 0
    b = EtcdBackend([etcd_server.endpoint])
    try:
        assert await b.count("/bench/etcd-puts/") == 0  # it cleaned up after itself
    finally:
        await b.close()


@aio
async def test_several_endpoints_fail_over_to_a_live_one(etcd_server, prefix: str) -> None:
    from controlplane.etcd_process import free_port

    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    b = EtcdBackend(f"{dead},{etcd_server.endpoint}")
    try:
        start = await b.current_revision()
        for i in range(10):  # round-robin must route every call to the live member
            await b.create(prefix + f"k{i}", b"v")
        assert await b.count(prefix) == 10
        stream = b.watch(prefix, start + 1)
        evs = await asyncio.wait_for(_collect(stream, (await b.get(prefix + "k9")).mod_revision), 10)
        await stream.aclose()
        assert [e.kv.key for e in evs] == [prefix + f"k{i}" for i in range(10)]
    finally:
        await b.close()


@aio
async def test_last_write_marker_tracks_every_write_to_a_resource(backend: EtcdBackend) -> None:
    res = f"widgets{uuid.uuid4().hex[:6]}"
    pfx = resource_prefix("example.com", res)
    assert (await backend.last_write_revision(pfx))[0] is None  # never written
    a = await backend.create(object_key("example.com", res, "ns", "a"), b"{}")
    assert (await backend.last_write_revision(pfx))[0] == a.mod_revision
    await backend.create("/registry/core/configmaps-other/x", b"{}")  # another resource
    written, rev = await backend.last_write_revision(resource_prefix("example.com", res, "ns"))
    assert written == a.mod_revision and rev > a.mod_revision
    u = await backend.update(a.key, b"{}", a.mod_revision)
    assert (await backend.last_write_revision(pfx))[0] == u.mod_revision
    with pytest.raises(ConflictError):
        await backend.update(a.key, b"{}", a.mod_revision)  # a failed write does not count
    assert (await backend.last_write_revision(pfx))[0] == u.mod_revision
    d = await backend.delete(a.key)
    assert (await backend.last_write_revision(pfx))[0] == d.mod_revision
    assert await backend.count(pfx) == 0  # the marker lives outside the resource's prefix
    assert (await backend.last_write_revision("/not-a-registry-key/"))[0] is None


@aio
async def test_leased_writes_expire(backend: EtcdBackend, prefix: str) -> None:
    """A key written with a lease goes when the lease expires (a DELETE, as for any delete);
    a write without the lease detaches it (kube-apiserver's Event TTL relies on both)."""
    lease = await backend.grant_lease(2)
    assert lease > 0
    leased, kept = prefix + "leased", prefix + "kept"
    await backend.create(leased, b"a", lease)
    kv = await backend.create(kept, b"b", lease)
    await backend.update(kept, b"c", kv.mod_revision)  # no lease: detached, stays
    [res] = await backend.write_batch([WriteOp("create", prefix + "batched", b"d", lease=lease)])
    assert not isinstance(res, Exception)
    for _ in range(100):
        if await backend.get(leased) is None and await backend.get(prefix + "batched") is None:
            break
        await asyncio.sleep(0.1)
    assert await backend.get(leased) is None and await backend.get(prefix + "batched") is None
    assert (await backend.get(kept)).value == b"c"
