"""The watch cache: ONE etcd watch per resource, fanned out in memory to every HTTP watcher.

Like kube-apiserver's Cacher: it lists the resource's prefix, then watches it from the list's
revision, keeping every current object (raw JSON bytes already stamped with
``metadata.resourceVersion``, plus parsed namespace/name/labels/selectable fields) and a ring
buffer of recent events so that watchers can start from a recent resourceVersion. Lists at
resourceVersion 0 (and consistent lists, after ``wait_fresh``) are served from memory. Objects
are kept as bytes and each event is encoded once, whatever the number of watchers.

Neighbours: ``controlplane.storage.interface`` (the ``Backend``: its watch, and
``last_write_revision`` / ``count_since`` for ``wait_fresh``), ``controlplane.machinery``
(selectors, ``fields_for``), the apiserver's list/watch handlers (the only users).

API:
    cache = WatchCache(backend, prefix, resource="pods", window=20_000, max_queue=10_000)
    await cache.start()            # initial list done when it returns; await cache.stop()
    cache.revision -> int          # the revision the cached state is consistent with
    cache.list(namespace=None, label_selector=None, field_selector=None) -> (list[Entry], revision)
        entries sorted by key; selectors may be strings or parsed selectors (ValueError if bad)
    cache.get(key) -> Entry | None
    await cache.wait_fresh(rv, timeout=3.0) -> int  # consistent read: cache fresh up to >= rv
        (rv = await backend.current_revision(); like ConsistentListFromCache); raises
        TooLargeResourceVersionError (504 upstream) when not reached within timeout
    w = await cache.watch(from_rv, namespace=None, label_selector=None, field_selector=None,
                          initial_events_end=False)
        from_rv 0: synthetic ADDED for the current state, then changes (optionally followed by a
        BOOKMARK event when the initial events end). from_rv older than the ring buffer:
        CompactedError (410). ``async for ev in w`` yields WatchCacheEvent(type, raw, rv, entry)
        with type ADDED / MODIFIED / DELETED / BOOKMARK; ``ev.json_line()`` is the encoded
        ``{"type":…,"object":…}\\n`` (computed once per event and type). ``w.bookmark_rv()`` is
        a resourceVersion safe to put in a BOOKMARK now (once closed, never past the revision it
        was closed at); ``w.close()`` ends it. A watcher whose queue overflows is terminated on a
        revision boundary (the client resumes from its last resourceVersion and gets the whole
        revision).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import ujson
from collections import deque
from typing import Any, Callable, Iterable, Mapping, Protocol

from prometheus_client import Counter, Gauge

from controlplane.apiserver.persistence.watchcache_events import (
    _ALL,
    _TRIGGER_FIELDS,
    CacheWatcher,
    Entry,
    WatchCacheEvent,
    _as_field_selector,
    _as_label_selector,
    _bucket_of,
    _by_key,
    _dumps,
    _Event,
    _intern,
    _restamp,
    _splice_rv,
)
from controlplane.log import get_logger
from controlplane.machinery.fields import fields_for
from controlplane.machinery.selectors import FieldSelector, LabelSelector
from controlplane.storage.interface import Backend, CompactedError, StorageError, WatchEvent

log = get_logger(__name__)


class Observer(Protocol):
    """Follows a cache's contents (``WatchCache.observe``)."""

    def reset(self, objects: Iterable[dict[str, Any]]) -> None: ...

    def apply(self, etype: str, obj: dict[str, Any]) -> None: ...

EVENTS_DISPATCHED = Counter("apiserver_watch_cache_events_dispatched_total",
                            "Events dispatched by the watch cache to watchers", ["resource"])
INITIALIZATIONS = Counter("apiserver_watch_cache_initializations_total",
                          "Watch cache (re)initializations (full lists)", ["resource"])
CACHE_RV = Gauge("apiserver_watch_cache_resource_version", "Latest resourceVersion in the watch cache",
                 ["resource"], multiprocess_mode="livemax")
WATCHERS = Gauge("apiserver_watch_cache_watchers", "Watchers currently served by the watch cache",
                 ["resource"], multiprocess_mode="livesum")


class TooLargeResourceVersionError(StorageError):
    """The cache did not reach the requested resourceVersion in time (504 upstream)."""

    def __init__(self, rv: int, current: int) -> None:
        super().__init__(f"Too large resource version: {rv}, current: {current}")
        self.rv = rv
        self.current = current


class WatchCache:
    """See the module docstring."""

    def __init__(self, backend: Backend, prefix: str, resource: str, window: int = 20_000,
                 max_queue: int = 10_000, fields: Callable[[str, Mapping[str, Any]], dict[str, str]] = fields_for,
                 page_size: int = 5_000) -> None:
        self.backend = backend
        self.prefix = prefix
        self.resource = resource
        self.window = window
        self.max_queue = max_queue
        self._fields = fields
        self._page = page_size
        self._items: dict[str, Entry] = {}
        self._by_ns: dict[str, dict[str, Entry]] = {}
        self._sorted_keys: list[str] | None = None  # all keys in order; dropped on add/remove
        self._ring: deque[_Event] = deque()
        self._oldest_rv = 0  # events with rv > _oldest_rv are all in the ring
        self._rev = 0
        self._watchers: set[CacheWatcher] = set()
        self._buckets: dict[tuple[str, str], set[CacheWatcher]] = {}
        self._waiters: list[tuple[int, int, asyncio.Future]] = []
        self._seq = itertools.count()
        self._ready = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._confirmed, self._confirmed_at = 0, -1
        self._check: asyncio.Future | None = None
        self._observers: list[Observer] = []

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"watchcache:{self.resource}")
        ready = asyncio.create_task(self._ready.wait())
        done, _ = await asyncio.wait({ready, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if ready not in done:
            ready.cancel()
            self._task.result()  # raises what killed it

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        for w in list(self._watchers):
            w.close("watch cache stopped")
        for _, _, fut in self._waiters:
            if not fut.done():
                fut.cancel()
        self._waiters.clear()

    @property
    def revision(self) -> int:
        """The revision the cache's contents are consistent with (lists report it)."""
        if self._confirmed_at == self._rev and self._confirmed > self._rev:
            return self._confirmed
        return self._rev

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def __len__(self) -> int:
        return len(self._items)

    def observe(self, observer: "Observer") -> None:
        """Keep ``observer`` in step with the cache: ``reset`` with every current object now
        and after each relist, ``apply`` for each change (the authorizers' RBAC store and
        Node graph follow their resources this way). Costs nothing without observers."""
        self._observers.append(observer)
        observer.reset(ujson.loads(e.raw) for e in list(self._items.values()))

    def entries_in(self, namespace: str) -> list[Entry]:
        """The cached entries of one namespace, unsorted (cheap look-ups by other parts of the
        apiserver, e.g. the Node authorizer's pods of a node)."""
        return list(self._by_ns.get(namespace, {}).values())

    def count_in(self, namespace: str) -> int:
        """How many objects of one namespace are cached (the admission chain's cheap "any
        quota here?" test)."""
        return len(self._by_ns.get(namespace, ()))

    # -- reads -----------------------------------------------------------------------------
    def get(self, key: str) -> Entry | None:
        return self._items.get(key)

    def list(self, namespace: str | None = None, label_selector: LabelSelector | str | None = None,
             field_selector: FieldSelector | str | None = None) -> tuple[list[Entry], int]:
        lsel, fsel = _as_label_selector(label_selector), _as_field_selector(field_selector)
        if namespace:
            source = sorted(self._by_ns.get(namespace, {}).values(), key=_by_key)
        else:
            if self._sorted_keys is None:
                self._sorted_keys = sorted(self._items)
            items = self._items
            source = [items[k] for k in self._sorted_keys]
        if lsel is None and fsel is None:
            return source, self.revision
        out = [e for e in source if (lsel is None or lsel.matches(e.labels))
               and (fsel is None or fsel.matches(e.fields))]
        return out, self.revision

    async def wait_fresh(self, rv: int, timeout: float = 3.0) -> int:
        """Wait until the cache is consistent with etcd at a revision >= ``rv`` (a revision just
        read from etcd); returns ``revision``. Either the cache applied events up to ``rv``, or
        one consistent read proves nothing under the prefix changed since its last event (the
        backend's last-write marker, else ``count_since``; etcd 3.4's progress notifications
        cannot be trusted for this). TooLargeResourceVersionError
        after ``timeout``."""
        await self._ready.wait()
        if self.revision >= rv:
            return self.revision
        loop = asyncio.get_running_loop()
        fut: asyncio.Future = loop.create_future()
        heapq.heappush(self._waiters, (rv, next(self._seq), fut))
        deadline = loop.time() + timeout
        try:
            while self.revision < rv:
                now = loop.time()
                if now >= deadline:
                    raise TooLargeResourceVersionError(rv, self.revision)
                await self._confirm()
                if self.revision >= rv:
                    break
                # events are in flight (or rv is ahead of etcd): let them arrive, then re-check
                await asyncio.wait({fut}, timeout=min(0.05, max(deadline - loop.time(), 0)))
            return self.revision
        finally:
            if not fut.done():
                fut.cancel()

    async def _confirm(self) -> None:
        """One shared freshness check at a time (coalesces concurrent consistent reads)."""
        if self._check is None or self._check.done():
            self._check = asyncio.ensure_future(self._do_confirm())
        try:
            await asyncio.shield(self._check)
        except StorageError as e:
            log.debug("watch cache freshness check failed", resource=self.resource, error=repr(e))

    async def _do_confirm(self) -> None:
        applied, size = self._rev, len(self._items)
        written, etcd_rev = await self.backend.last_write_revision(self.prefix)
        if written is not None:
            if self._rev == applied and written <= applied and etcd_rev > self.revision:
                self._confirmed, self._confirmed_at = etcd_rev, applied
            return
        modified, total, etcd_rev = await self.backend.count_since(self.prefix, applied)
        if self._rev == applied and modified == 0 and total == size and etcd_rev > self.revision:
            # etcd's state under the prefix at etcd_rev is the cache's state: only keys created
            # and deleted again within (applied, etcd_rev] can still be in flight; watchers
            # skip those (each watcher ignores events at or below the revision it started at).
            self._confirmed, self._confirmed_at = etcd_rev, applied

    async def watch(self, from_rv: int, namespace: str | None = None,
                    label_selector: LabelSelector | str | None = None,
                    field_selector: FieldSelector | str | None = None,
                    initial_events_end: bool = False) -> CacheWatcher:
        lsel, fsel = _as_label_selector(label_selector), _as_field_selector(field_selector)
        await self._ready.wait()
        if from_rv > self.revision:
            await self.wait_fresh(from_rv)
        # from here on no await: replay and registration are atomic w.r.t. dispatch
        w = CacheWatcher(self, namespace, lsel, fsel, self.max_queue)
        if from_rv <= 0:
            entries, rev = self.list(namespace, lsel, fsel)
            w._initial.extend(WatchCacheEvent("ADDED", e.raw, e.rv, e) for e in entries)
            if initial_events_end:
                w._initial.append(WatchCacheEvent("BOOKMARK", b"", rev, None))
            w._min_rv = rev
        else:
            if from_rv < self._oldest_rv:
                raise CompactedError(from_rv, self._oldest_rv)
            replay = []
            for ev in reversed(self._ring):
                if ev.rv <= from_rv:
                    break
                replay.append(ev)
            w._min_rv = w.last_rv = from_rv
            for ev in reversed(replay):
                w._offer(ev)
        if not w.closed:  # replay may already have overflowed it; it then just drains and ends
            self._watchers.add(w)
            self._buckets.setdefault(_bucket_of(w), set()).add(w)
        WATCHERS.labels(self.resource).set(len(self._watchers))
        return w

    @property
    def applied_revision(self) -> int:
        """The revision of the last event applied (what a watcher's bookmark may reach)."""
        return self._rev

    def unregister(self, w: CacheWatcher) -> None:
        self._watchers.discard(w)
        key = _bucket_of(w)
        bucket = self._buckets.get(key)
        if bucket is not None:
            bucket.discard(w)
            if not bucket:
                del self._buckets[key]
        WATCHERS.labels(self.resource).set(len(self._watchers))

    # -- the one etcd watch ----------------------------------------------------------------
    def _entry(self, key: str, value: bytes, rv: int) -> Entry:
        obj = ujson.loads(value)
        md = obj.get("metadata")
        if not isinstance(md, dict):
            md = obj["metadata"] = {}
        raw = _splice_rv(obj, md, value, rv)
        spliced = raw is not None
        if raw is None:
            md["resourceVersion"] = str(rv)
            raw = _dumps(obj)
        labels = md.get("labels") or {}
        if labels:  # label keys/values and field values repeat across objects: share them
            labels = {_intern(k): _intern(v) if isinstance(v, str) else v for k, v in labels.items()}
        fields = {k: _intern(v) for k, v in self._fields(self.resource, obj).items()}
        return Entry(key, raw, rv, _intern(md.get("namespace") or ""), md.get("name") or "",
                     labels, fields, spliced)

    def _put(self, e: Entry) -> None:
        if e.key not in self._items:
            self._sorted_keys = None
        self._items[e.key] = e
        self._by_ns.setdefault(e.namespace, {})[e.key] = e

    def _remove(self, e: Entry) -> None:
        self._sorted_keys = None
        self._items.pop(e.key, None)
        ns = self._by_ns.get(e.namespace)
        if ns is not None:
            ns.pop(e.key, None)
            if not ns:
                del self._by_ns[e.namespace]

    async def _relist(self) -> None:
        """List the prefix page by page at one revision, decoding each page as it comes (peak
        memory: one page of raw values, not the whole list), then swap the new state in."""
        items: dict[str, Entry] = {}
        by_ns: dict[str, dict[str, Entry]] = {}
        page = await self.backend.list(self.prefix, limit=self._page)
        rev = page.revision
        while True:
            for kv in page.items:
                try:
                    e = self._entry(kv.key, kv.value, kv.mod_revision)
                except Exception:  # undecodable or odd-shaped: never wedge the cache on it
                    log.error("undecodable object in storage; skipped", key=kv.key)
                    continue
                items[e.key] = e
                by_ns.setdefault(e.namespace, {})[e.key] = e
            if not page.more or not page.items:
                break
            start = page.items[-1].key + "\x00"
            page = await self.backend.list(self.prefix, revision=rev, limit=self._page, start_key=start)
        # Nothing under this prefix changed after its last write: a watcher resuming from any
        # revision since then (an apiserver restart while other resources were written, e.g.
        # the endpoint reconciler's) misses nothing, so it need not get 410.
        oldest = rev
        try:
            written, _ = await self.backend.last_write_revision(self.prefix)
        except StorageError:
            written = None
        if written is not None and 0 < written <= rev:
            oldest = written
        if self._ready.is_set():  # watchers may have missed changes: they must resume (and get 410
            # if too old); closed before the new revision is set, so their bookmarks stay below it
            for w in list(self._watchers):
                w.close("watch cache re-initialized")
        self._items, self._by_ns, self._sorted_keys = items, by_ns, None
        self._ring.clear()
        self._oldest_rv = oldest
        self._rev = rev
        INITIALIZATIONS.labels(self.resource).inc()
        CACHE_RV.labels(self.resource).set(rev)
        self._release_waiters()
        for o in self._observers:
            o.reset(ujson.loads(e.raw) for e in list(items.values()))
        self._ready.set()
        log.info("watch cache listed", resource=self.resource, objects=len(self._items), revision=rev)

    async def _run(self) -> None:
        need_list, backoff = True, 0.1
        while True:
            try:
                if need_list:
                    await self._relist()
                    need_list = False
                stream = self.backend.watch(self.prefix, self._rev + 1, prev_kv=False)
                try:
                    async for batch in stream:
                        backoff = 0.1
                        if batch:  # (empty batches are progress notifications: not trusted)
                            self._apply(batch)
                finally:
                    await stream.aclose()
            except asyncio.CancelledError:
                raise
            except CompactedError as e:
                log.warning("watch cache fell behind compaction; relisting", resource=self.resource, error=str(e))
                need_list = True
            except Exception as e:  # etcd unreachable and the like: retry, resuming without a gap
                log.warning("watch cache watch failed; retrying", resource=self.resource, error=repr(e),
                            backoff=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    def _targets(self, ev: _Event) -> list[CacheWatcher]:
        """The watchers that may want ``ev`` (the others' selectors cannot match it)."""
        buckets = self._buckets
        if len(buckets) == 1 and _ALL in buckets:
            return list(buckets[_ALL])
        keys = {_ALL}
        for e in (ev.cur, ev.prev):
            if e is not None:
                keys.add(("ns", e.namespace))
                for f in _TRIGGER_FIELDS:
                    keys.add((f, e.fields.get(f, "")))
        out: list[CacheWatcher] = []
        for k in keys:
            b = buckets.get(k)
            if b:
                out.extend(b)
        return out

    def _apply(self, batch: list[WatchEvent]) -> None:
        dispatched = 0
        for wev in batch:
            kv = wev.kv
            rv = kv.mod_revision
            if rv <= self._rev:
                continue  # already applied (defensive: the stream never repeats)
            old = self._items.get(kv.key)
            if wev.type == "PUT":
                try:
                    cur = self._entry(kv.key, kv.value, rv)
                except Exception:  # undecodable or odd-shaped: never wedge the cache on it
                    log.error("undecodable object in storage; skipped", key=kv.key, rv=rv)
                    continue
                self._put(cur)
                ev = _Event("MODIFIED" if old is not None else "ADDED", cur, old, rv)
                if self._observers:
                    self._notify(ev.type, cur.raw)
            else:
                if old is None:
                    continue
                self._remove(old)
                if self._observers:
                    self._notify("DELETED", old.raw)
                gone = Entry(old.key, _restamp(old, rv), rv, old.namespace, old.name, old.labels, old.fields,
                             old.spliced)
                ev = _Event("DELETED", gone, old, rv)
            self._ring.append(ev)
            if len(self._ring) > self.window:
                self._oldest_rv = self._ring.popleft().rv
            targets = self._targets(ev) if self._watchers else ()
            for w in targets:
                w._offer(ev)
            dispatched += len(targets)
        self._rev = max(self._rev, batch[-1].kv.mod_revision)
        EVENTS_DISPATCHED.labels(self.resource).inc(dispatched)
        CACHE_RV.labels(self.resource).set(self._rev)
        self._release_waiters()

    def _notify(self, etype: str, raw: bytes) -> None:
        obj = ujson.loads(raw)
        for o in self._observers:
            try:
                o.apply(etype, obj)
            except Exception:  # an observer's bug must not wedge the cache
                log.exception("watch cache observer failed", resource=self.resource)

    def _release_waiters(self) -> None:
        while self._waiters and self._waiters[0][0] <= self._rev:
            _, _, fut = heapq.heappop(self._waiters)
            if not fut.done():
                fut.set_result(None)
