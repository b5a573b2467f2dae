"""The watch cache against a real etcd: lists from memory with selectors, fan-out of one etcd
watch to many watchers, selector transitions (ADDED/DELETED as Kubernetes sends them), resume
from a recent resourceVersion, 410 for a too-old one, slow watchers cut off, freshness waits, and
recovery from an etcd restart and from falling behind a compaction (relist)."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from controlplane.apiserver.persistence.watchcache import TooLargeResourceVersionError, WatchCache
from controlplane.apiserver.persistence.watchcache_events import CacheWatcher, WatchCacheEvent
from controlplane.storage.etcd import EtcdBackend
from controlplane.storage.interface import CompactedError, WriteOp

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def pod(name: str, ns: str = "default", labels: dict | None = None, node: str = "", phase: str = "Pending",
        compact: bool = True) -> bytes:
    """A pod as the apiserver stores it (compact JSON, apiVersion/kind/metadata first, no
    resourceVersion), or, with ``compact=False``, as any other JSON writer would."""
    return json.dumps({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels or {}},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]},
        "status": {"phase": phase},
    }, separators=(",", ":") if compact else None).encode()


@pytest.fixture
def prefix() -> str:
    return f"/registry/core/pods-{uuid.uuid4().hex[:8]}/"


@pytest.fixture
async def cache(backend, prefix):
    c = WatchCache(backend, prefix, "pods")
    await c.start()
    yield c
    await c.stop()


async def take(w: CacheWatcher, n: int, timeout: float = 10) -> list[WatchCacheEvent]:
    async def run() -> list[WatchCacheEvent]:
        out = []
        async for ev in w:
            out.append(ev)
            if len(out) == n:
                break
        return out
    return await asyncio.wait_for(run(), timeout)


async def nothing_more(w: CacheWatcher, cache: WatchCache, rv: int) -> None:
    await cache.wait_fresh(rv)
    assert w.pending() == 0


@pytest.mark.asyncio(loop_scope="session")
async def test_list_from_memory_with_selectors(backend, prefix) -> None:
    await backend.create(prefix + "a/p1", pod("p1", "a", {"app": "web"}, node="n1", phase="Running"))
    await backend.create(prefix + "a/p2", pod("p2", "a", {"app": "db"}, node="n2", compact=False))
    last = await backend.create(prefix + "b/p3", pod("p3", "b", {"app": "web"}, node="n1"))
    c = WatchCache(backend, prefix, "pods")
    await c.start()
    try:
        entries, rev = c.list()
        assert rev >= last.mod_revision
        assert [e.name for e in entries] == ["p1", "p2", "p3"]
        for e in entries:
            obj = json.loads(e.raw)
            assert obj["metadata"]["resourceVersion"] == str(e.rv)
            assert obj["metadata"]["name"] == e.name and obj["spec"]["containers"][0]["image"] == "busybox"
        assert [e.spliced for e in entries] == [True, False, True]
        assert [e.name for e in c.list(namespace="a")[0]] == ["p1", "p2"]
        assert [e.name for e in c.list(label_selector="app=web")[0]] == ["p1", "p3"]
        assert [e.name for e in c.list(field_selector="spec.nodeName=n1")[0]] == ["p1", "p3"]
        assert [e.name for e in c.list("a", "app in (web,db)", "status.phase!=Running")[0]] == ["p2"]
        with pytest.raises(ValueError):
            c.list(label_selector="app in (")
        # a later write is visible once the cache is fresh
        kv = await backend.create(prefix + "a/p4", pod("p4", "a"))
        await c.wait_fresh(kv.mod_revision)
        assert c.get(prefix + "a/p4").rv == kv.mod_revision
    finally:
        await c.stop()


@pytest.mark.asyncio(loop_scope="session")
async def test_initial_list_is_paged_at_one_revision(backend, prefix) -> None:
    for i in range(10):
        await backend.create(prefix + f"ns{i % 3}/p{i:02d}", pod(f"p{i:02d}", f"ns{i % 3}"))
    c = WatchCache(backend, prefix, "pods", page_size=3)
    await c.start()
    try:
        entries, _ = c.list()
        assert [e.key for e in entries] == sorted(prefix + f"ns{i % 3}/p{i:02d}" for i in range(10))
        assert [e.name for e in c.list(namespace="ns1")[0]] == ["p01", "p04", "p07"]
    finally:
        await c.stop()


@pytest.mark.asyncio(loop_scope="session")
async def test_fan_out_to_many_watchers_encodes_once(backend, prefix, cache) -> None:
    watchers = [await cache.watch(cache.revision) for _ in range(200)]
    written = []
    for i in range(10):
        written.append(await backend.create(prefix + f"ns/p{i}", pod(f"p{i}", "ns")))
    kv = await backend.update(prefix + "ns/p0", pod("p0", "ns", {"x": "y"}), written[0].mod_revision)
    gone = await backend.delete(prefix + "ns/p1")
    results = await asyncio.gather(*(take(w, 12) for w in watchers))
    expect = [("ADDED", w.mod_revision) for w in written] + [("MODIFIED", kv.mod_revision), ("DELETED", gone.mod_revision)]
    for evs in results:
        assert [(e.type, e.rv) for e in evs] == expect
    # every watcher got the very same encoded line objects
    for i in range(12):
        assert len({id(evs[i].json_line()) for evs in results}) == 1
    line = json.loads(results[0][11].json_line())
    assert line["type"] == "DELETED" and line["object"]["metadata"]["resourceVersion"] == str(gone.mod_revision)
    assert line["object"]["metadata"]["name"] == "p1"
    for w in watchers:
        w.close()


@pytest.mark.asyncio(loop_scope="session")
@pytest.mark.parametrize("compact", [True, False], ids=["stored-form", "other-json"])
async def test_selector_transitions(backend, prefix, cache, compact: bool) -> None:
    w = await cache.watch(cache.revision, label_selector="app=web")
    wf = await cache.watch(cache.revision, namespace="ns", field_selector="spec.nodeName=n1")
    k = prefix + "ns/p"
    a = await backend.create(k, pod("p", "ns", compact=compact, labels={"app": "db"}))  # matches neither
    b = await backend.update(k, pod("p", "ns", compact=compact, labels={"app": "web"}, node="n1"), a.mod_revision)  # matches both
    c = await backend.update(k, pod("p", "ns", compact=compact, labels={"app": "web", "v": "2"}, node="n1"), b.mod_revision)
    d = await backend.update(k, pod("p", "ns", compact=compact, labels={"app": "db"}, node="n1"), c.mod_revision)  # stops matching w
    e = await backend.delete(k)
    evs = await take(w, 3)
    assert [(x.type, x.rv) for x in evs] == [("ADDED", b.mod_revision), ("MODIFIED", c.mod_revision),
                                            ("DELETED", d.mod_revision)]
    deleted = json.loads(evs[2].raw)
    assert deleted["metadata"]["labels"] == {"app": "web", "v": "2"}  # the last state that matched
    assert deleted["metadata"]["resourceVersion"] == str(d.mod_revision)
    await nothing_more(w, cache, e.mod_revision)  # the delete of a non-matching object is not sent
    fevs = await take(wf, 4)
    assert [(x.type, x.rv) for x in fevs] == [("ADDED", b.mod_revision), ("MODIFIED", c.mod_revision),
                                             ("MODIFIED", d.mod_revision), ("DELETED", e.mod_revision)]
    w.close()
    wf.close()


@pytest.mark.asyncio(loop_scope="session")
async def test_watch_from_zero_sends_current_state_first(backend, prefix, cache) -> None:
    p1 = await backend.create(prefix + "ns/p1", pod("p1", "ns", {"app": "web"}))
    await backend.create(prefix + "ns/p2", pod("p2", "ns", {"app": "db"}))
    await cache.wait_fresh(await backend.current_revision())
    w = await cache.watch(0, label_selector="app=web", initial_events_end=True)
    head = await take(w, 2)
    assert [(x.type, x.rv) for x in head] == [("ADDED", p1.mod_revision), ("BOOKMARK", cache.revision)]
    p3 = await backend.create(prefix + "ns/p3", pod("p3", "ns", {"app": "web"}))
    nxt = await take(w, 1)
    assert [(x.type, x.rv) for x in nxt] == [("ADDED", p3.mod_revision)]
    assert w.bookmark_rv() >= p3.mod_revision
    w.close()


@pytest.mark.asyncio(loop_scope="session")
async def test_resume_from_recent_rv_and_410_for_too_old(backend, prefix) -> None:
    c = WatchCache(backend, prefix, "pods", window=5)
    await c.start()
    try:
        start = c.revision
        kvs = [await backend.create(prefix + f"ns/p{i}", pod(f"p{i}", "ns")) for i in range(8)]
        await c.wait_fresh(kvs[-1].mod_revision)
        w = await c.watch(kvs[4].mod_revision)  # resume: exactly the events after it
        assert [x.rv for x in await take(w, 3)] == [k.mod_revision for k in kvs[5:]]
        w.close()
        with pytest.raises(CompactedError):
            await c.watch(start)  # fell out of the 5-event window
        with pytest.raises(TooLargeResourceVersionError):
            await c.wait_fresh(kvs[-1].mod_revision + 1000, timeout=0.3)
    finally:
        await c.stop()


def _etcd_ops(operation: str) -> float:
    from prometheus_client import REGISTRY

    total = 0.0
    for metric in REGISTRY.collect():
        if metric.name == "etcd_request_duration_seconds":
            for sample in metric.samples:
                if sample.name.endswith("_count") and sample.labels.get("operation") == operation:
                    total += sample.value
    return total


@pytest.mark.asyncio(loop_scope="session")
async def test_wait_fresh_uses_the_last_write_marker(backend, prefix, cache) -> None:
    kv = await backend.create(prefix + "ns/p", pod("p", "ns"))
    await cache.wait_fresh(kv.mod_revision)
    scans = _etcd_ops("count_since")
    for i in range(3):
        other = await backend.create(prefix[:-1] + f"-other/x{i}", b"{}")  # another resource
        assert await cache.wait_fresh(other.mod_revision) >= other.mod_revision
    assert _etcd_ops("count_since") == scans  # one marker read each time, no scan of the prefix
    assert [e.name for e in cache.list()[0]] == ["p"]


@pytest.mark.asyncio(loop_scope="session")
async def test_wait_fresh_without_events_under_the_prefix(backend, prefix, cache) -> None:
    other = await backend.create(prefix[:-1] + "-other/x", b"{}")
    assert await cache.wait_fresh(other.mod_revision) >= other.mod_revision  # proved by one read
    assert cache.revision >= other.mod_revision
    entries, rev = cache.list()
    assert entries == [] and rev >= other.mod_revision
    # a watch from that revision gets exactly the later events
    w = await cache.watch(rev)
    kv = await backend.create(prefix + "ns/p", pod("p", "ns"))
    assert [x.rv for x in await take(w, 1)] == [kv.mod_revision]
    w.close()


@pytest.mark.asyncio(loop_scope="session")
async def test_slow_watcher_is_terminated_others_continue(backend, prefix) -> None:
    c = WatchCache(backend, prefix, "pods", max_queue=3)
    await c.start()
    try:
        slow = await c.watch(c.revision)
        fast = await c.watch(c.revision)
        kvs, got = [], []
        for i in range(8):  # the fast watcher reads each event before the next write
            kvs.append(await backend.create(prefix + f"ns/p{i}", pod(f"p{i}", "ns")))
            got += await take(fast, 1)
        assert slow.closed and slow.close_reason == "queue overflow"
        assert not fast.closed
        # the slow one still hands out what it had queued, then ends (its client resumes)
        assert [x.rv for x in await take(slow, 10, timeout=2)] == [k.mod_revision for k in kvs[:3]]
        assert [x.rv for x in got] == [k.mod_revision for k in kvs]
        fast.close()
    finally:
        await c.stop()


@pytest.mark.asyncio(loop_scope="session")
async def test_a_closed_watchers_bookmark_never_passes_what_it_was_offered(backend, prefix, cache) -> None:
    """A watch ended by its deadline sends one last BOOKMARK; the cache goes on applying events
    after the watcher closed (none are offered to it), so that bookmark must stay at the revision
    it was closed at, or the client resumes after writes it never got (the bench's lost pods)."""
    first = await backend.create(prefix + "ns/a", pod("a", "ns"))
    await cache.wait_fresh(first.mod_revision)
    w = await cache.watch(first.mod_revision)
    w.close("timeout")
    batch = await backend.write_batch([WriteOp("create", prefix + f"ns/b{i}", pod(f"b{i}", "ns")) for i in range(3)])
    assert len({kv.mod_revision for kv in batch}) == 1  # one revision for the three
    await cache.wait_fresh(batch[0].mod_revision)
    assert cache.applied_revision == batch[0].mod_revision
    assert w.bookmark_rv() == first.mod_revision
    assert await take(w, 1, timeout=1) == []  # nothing queued: the stream just ends
    resumed = await cache.watch(w.bookmark_rv())
    assert sorted(ev.entry.name for ev in await take(resumed, 3)) == ["b0", "b1", "b2"]
    resumed.close()


@pytest.mark.asyncio(loop_scope="session")
async def test_an_overflowing_watcher_ends_on_a_revision_boundary(backend, prefix) -> None:
    """Writes committed together share a revision; a watcher whose queue overflows in the middle
    of one is cut before it (its queued part is dropped), so the client's resumed watch gets the
    whole revision instead of skipping its rest."""
    c = WatchCache(backend, prefix, "pods", max_queue=3)
    await c.start()
    try:
        w = await c.watch(c.revision)
        single = await backend.create(prefix + "ns/a", pod("a", "ns"))
        batch = await backend.write_batch([WriteOp("create", prefix + f"ns/b{i}", pod(f"b{i}", "ns"))
                                           for i in range(5)])
        rv = batch[0].mod_revision
        await c.wait_fresh(rv)
        assert w.closed and w.close_reason == "queue overflow"
        got = await take(w, 10, timeout=1)
        assert [(ev.rv, ev.entry.name) for ev in got] == [(single.mod_revision, "a")]
        assert w.bookmark_rv() == rv - 1
        resumed = await c.watch(got[-1].rv)  # the client resumes from the last event it got
        assert sorted((ev.rv, ev.entry.name) for ev in await take(resumed, 5)) == [(rv, f"b{i}") for i in range(5)]
        resumed.close()
    finally:
        await c.stop()


class _GatedWatch:
    def __init__(self, gate: asyncio.Event, stream) -> None:
        self._gate, self._stream = gate, stream

    @property
    def revision(self) -> int:
        return self._stream.revision

    def request_progress(self) -> None:
        self._stream.request_progress()

    def __aiter__(self):
        return self

    async def __anext__(self):
        await self._gate.wait()
        return await self._stream.__anext__()

    async def aclose(self) -> None:
        await self._stream.aclose()


class GatedEtcdBackend(EtcdBackend):
    """The real EtcdBackend whose watches wait for ``gate``: lets a test fall behind on purpose."""

    def __init__(self, endpoints: list[str]) -> None:
        super().__init__(endpoints)
        self.gate = asyncio.Event()
        self.gate.set()

    def watch(self, prefix: str, start_revision: int, prev_kv: bool = True):
        return _GatedWatch(self.gate, super().watch(prefix, start_revision, prev_kv))


@pytest.mark.asyncio(loop_scope="session")
async def test_survives_etcd_restart_and_relists_after_compaction(fresh_etcd, prefix) -> None:
    backend = GatedEtcdBackend([fresh_etcd.endpoint])
    writer = EtcdBackend([fresh_etcd.endpoint])
    c = WatchCache(backend, prefix, "pods")
    try:
        a = await writer.create(prefix + "ns/a", pod("a", "ns"))
        await c.start()
        w = await c.watch(c.revision)
        # 1. etcd restarts on the same data: the cache resumes with no gap
        await asyncio.to_thread(fresh_etcd.stop)
        await asyncio.to_thread(fresh_etcd.start_sync)
        kvs = []
        for i in range(3):
            for _ in range(100):
                try:
                    kvs.append(await writer.create(prefix + f"ns/r{i}", pod(f"r{i}", "ns")))
                    break
                except Exception:
                    await asyncio.sleep(0.1)
        assert [x.rv for x in await take(w, 3, timeout=30)] == [k.mod_revision for k in kvs]
        # 2. the cache falls behind a compaction: it relists, watchers end, old RVs get 410
        old_rv = c.revision
        backend.gate.clear()
        await asyncio.to_thread(fresh_etcd.stop)
        await asyncio.to_thread(fresh_etcd.start_sync)
        for _ in range(100):
            try:
                await writer.delete(prefix + "ns/a")
                break
            except Exception:
                await asyncio.sleep(0.1)
        late = await writer.create(prefix + "ns/late", pod("late", "ns"))
        await writer.compact(late.mod_revision)
        backend.gate.set()
        for _ in range(300):
            if c.revision >= late.mod_revision:
                break
            await asyncio.sleep(0.05)
        names = [e.name for e in c.list()[0]]
        assert names == ["late", "r0", "r1", "r2"]
        assert a.mod_revision < old_rv
        assert w.closed and w.close_reason == "watch cache re-initialized"
        with pytest.raises(CompactedError):
            await c.watch(old_rv)
        w2 = await c.watch(c.revision)
        nxt = await writer.create(prefix + "ns/next", pod("next", "ns"))
        assert [x.rv for x in await take(w2, 1)] == [nxt.mod_revision]
    finally:
        await c.stop()
        await backend.close()
        await writer.close()


@pytest.mark.asyncio(loop_scope="session")
async def test_indexed_watchers_follow_a_pod_between_nodes(backend, prefix, cache) -> None:
    unscheduled = await cache.watch(cache.revision, field_selector="spec.nodeName=")
    on_n1 = await cache.watch(cache.revision, field_selector="spec.nodeName=n1")
    on_n2 = await cache.watch(cache.revision, field_selector="spec.nodeName=n2")
    by_name = await cache.watch(cache.revision, namespace="ns", field_selector="metadata.name=p")
    other_ns = await cache.watch(cache.revision, namespace="elsewhere")
    k = prefix + "ns/p"
    a = await backend.create(k, pod("p", "ns"))
    b = await backend.update(k, pod("p", "ns", node="n1"), a.mod_revision)  # bound
    c = await backend.update(k, pod("p", "ns", node="n1", phase="Running"), b.mod_revision)
    d = await backend.delete(k)
    await backend.create(prefix + "ns/q", pod("q", "ns", node="n1"))
    assert [(x.type, x.rv) for x in await take(unscheduled, 2)] == [("ADDED", a.mod_revision), ("DELETED", b.mod_revision)]
    assert [(x.type, x.rv) for x in await take(on_n1, 3)] == [
        ("ADDED", b.mod_revision), ("MODIFIED", c.mod_revision), ("DELETED", d.mod_revision)]
    assert [(x.type, x.rv) for x in await take(by_name, 4)] == [
        ("ADDED", a.mod_revision), ("MODIFIED", b.mod_revision), ("MODIFIED", c.mod_revision), ("DELETED", d.mod_revision)]
    last = await backend.create(prefix + "ns/z", pod("z", "ns"))
    assert [x.rv for x in await take(unscheduled, 1)] == [last.mod_revision]
    await nothing_more(on_n2, cache, last.mod_revision)
    await nothing_more(other_ns, cache, last.mod_revision)
    assert on_n2.pending() == 0 and by_name.pending() == 0
    for w in (unscheduled, on_n1, on_n2, by_name, other_ns):
        w.close()


# --- property: every watcher sees exactly its selector's view of the write sequence ---------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from controlplane.machinery.selectors import parse_label_selector  # noqa: E402

SELECTORS = ["", "app=web", "app!=web", "app in (web,db)", "!app", "tier", "app=web,tier"]
LABEL_SETS = st.fixed_dictionaries({}, optional={"app": st.sampled_from(["web", "db", "x"]), "tier": st.just("a")})
WRITES = st.lists(st.tuples(st.sampled_from(["put", "delete"]), st.sampled_from("abc"), LABEL_SETS),
                  min_size=1, max_size=20)


def expected_view(selector: str, writes: list[tuple[str, str, dict | None, int]]) -> list[tuple[str, str, int]]:
    sel = parse_label_selector(selector)
    state: dict[str, dict] = {}
    out = []
    for op, name, labels, rv in writes:
        was = name in state and sel.matches(state[name])
        if op == "put":
            state[name] = labels
            now = sel.matches(labels)
            kind = ("MODIFIED" if was else "ADDED") if now else ("DELETED" if was else "")
        else:
            del state[name]
            kind = "DELETED" if was else ""
        if kind:
            out.append((kind, name, rv))
    return out


@pytest.fixture(scope="module")
def loop_thread():
    from tests.integration.test_storage_etcd import _LoopThread

    lt = _LoopThread()
    yield lt
    lt.close()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(writes=WRITES)
def test_watchers_see_exactly_their_selector_view(etcd_server, loop_thread, writes) -> None:
    prefix = f"/registry/core/pods-{uuid.uuid4().hex[:8]}/"

    async def scenario() -> None:
        backend = EtcdBackend([etcd_server.endpoint])
        cache = WatchCache(backend, prefix, "pods")
        await cache.start()
        try:
            watchers = {s: await cache.watch(cache.revision, label_selector=s) for s in SELECTORS}
            done: list[tuple[str, str, dict | None, int]] = []
            present: dict[str, int] = {}
            for op, name, labels in writes:
                key = prefix + "ns/" + name
                if op == "put":
                    body = pod(name, "ns", labels)
                    kv = await (backend.update(key, body, present[name]) if name in present else backend.create(key, body))
                    present[name] = kv.mod_revision
                    done.append(("put", name, labels, kv.mod_revision))
                elif name in present:
                    kv = await backend.delete(key, present.pop(name))
                    done.append(("delete", name, None, kv.mod_revision))
            if done:
                await cache.wait_fresh(done[-1][3])
            for s, w in watchers.items():
                want = expected_view(s, done)
                got = await take(w, len(want)) if want else []
                assert [(e.type, e.entry.name, e.rv) for e in got] == want, s
                assert w.pending() == 0, s
                w.close()
        finally:
            await cache.stop()
            await backend.close()

    loop_thread.run(scenario(), timeout=60)
