"""Entries, events and watchers of the watch cache (``watchcache.py``): the in-memory side.

An ``Entry`` is one object version as bytes (``metadata.resourceVersion`` already in it) with
its namespace, name, labels and selectable fields parsed once; an internal ``_Event`` is one
change with lazily built, shared ``WatchCacheEvent`` views (so a line is encoded once whatever
the number of watchers); a ``CacheWatcher`` filters (namespace, label and field selectors, with
Kubernetes' ADDED/DELETED on selector transitions), buffers with a bound and is iterated by
the HTTP watch handler. Neighbours: ``watchcache.WatchCache`` (owns and feeds these, as their
``WatcherSource``; this module does not import it), ``controlplane.machinery`` (selectors),
``endpoints/watch.py``.
"""

from __future__ import annotations

import asyncio
import ujson
import sys
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

from prometheus_client import Counter

from controlplane.log import get_logger
from controlplane.machinery.selectors import FieldSelector, LabelSelector, parse_field_selector, parse_label_selector

log = get_logger(__name__)

TERMINATED = Counter("apiserver_terminated_watchers_total",
                     "Watchers closed because they were too slow (queue overflow)", ["resource"])

@dataclass(slots=True)
class Entry:
    """One object version: ``raw`` is its JSON with ``metadata.resourceVersion`` = ``rv``."""

    key: str
    raw: bytes
    rv: int
    namespace: str
    name: str
    labels: dict[str, str]
    fields: dict[str, str]
    spliced: bool = False  # raw = stored bytes with the resourceVersion spliced in (no re-encode)

    def obj(self) -> dict[str, Any]:
        return ujson.loads(self.raw)


_intern = sys.intern


def _by_key(e: "Entry") -> str:
    return e.key


def _dumps(obj: Any) -> bytes:
    return ujson.dumps(obj, ensure_ascii=False, escape_forward_slashes=False).encode()


_META = b'"metadata":{'


def _stamp(raw: bytes, rv: int) -> bytes:
    obj = ujson.loads(raw)
    obj.setdefault("metadata", {})["resourceVersion"] = str(rv)
    return _dumps(obj)


def _restamp(e: "Entry", rv: int) -> bytes:
    """``e.raw`` with its resourceVersion replaced by ``rv``."""
    if e.spliced:  # we put '"resourceVersion":"<rv>"' first in the top-level metadata
        head = _META + b'"resourceVersion":"%d"' % e.rv
        i = e.raw.find(head)
        if i >= 0:
            return e.raw[:i] + _META + b'"resourceVersion":"%d"' % rv + e.raw[i + len(head):]
    return _stamp(e.raw, rv)


def _splice_rv(obj: dict[str, Any], md: dict[str, Any], value: bytes, rv: int) -> bytes | None:
    """Fast path for values stored as the apiserver's ``store.encode`` writes them (apiVersion,
    kind, metadata first; no resourceVersion): splice ``"resourceVersion":"<rv>"`` into the
    top-level metadata without re-encoding. Only string values precede that metadata, and an
    encoded string cannot contain the unescaped ``"metadata":{``, so its first occurrence is it."""
    if "resourceVersion" in md:
        return None
    it = iter(obj)
    if (next(it, None), next(it, None), next(it, None)) != ("apiVersion", "kind", "metadata"):
        return None
    if not isinstance(obj["apiVersion"], str) or not isinstance(obj["kind"], str):
        return None
    i = value.find(_META)
    if i < 0:
        return None
    j = i + len(_META)
    return b'%s"resourceVersion":"%d"%s%s' % (value[:j], rv, b"," if md else b"", value[j:])


class WatchCacheEvent:
    """What a watcher receives; shared by every watcher that gets the same (event, type)."""

    __slots__ = ("type", "raw", "rv", "entry", "_line")

    def __init__(self, type: str, raw: bytes, rv: int, entry: Entry | None) -> None:
        self.type = type
        self.raw = raw
        self.rv = rv
        self.entry = entry
        self._line: bytes | None = None

    def json_line(self) -> bytes:
        """``{"type":"…","object":<raw>}\\n`` (not for BOOKMARK, whose object the caller builds)."""
        if self._line is None:
            self._line = b'{"type":"' + self.type.encode() + b'","object":' + self.raw + b"}\n"
        return self._line

    def __repr__(self) -> str:
        return f"WatchCacheEvent({self.type}, rv={self.rv}, key={self.entry.key if self.entry else None})"


class _Event:
    """One change in the cache, with lazily built per-type views for watchers."""

    __slots__ = ("type", "cur", "prev", "rv", "_views")

    def __init__(self, type: str, cur: Entry, prev: Entry | None, rv: int) -> None:
        self.type = type  # ADDED / MODIFIED / DELETED
        self.cur = cur  # for DELETED: the last state stamped with the delete's revision
        self.prev = prev
        self.rv = rv
        self._views: dict[str, WatchCacheEvent] = {}

    def view(self, type: str) -> WatchCacheEvent:
        v = self._views.get(type)
        if v is None:
            if type == "DELETED" and self.type == "MODIFIED":  # stopped matching a selector
                p = self.prev
                assert p is not None
                e = Entry(p.key, _restamp(p, self.rv), self.rv, p.namespace, p.name, p.labels, p.fields,
                          p.spliced)
                v = WatchCacheEvent("DELETED", e.raw, self.rv, e)
            else:
                v = WatchCacheEvent(type, self.cur.raw, self.rv, self.cur)
            self._views[type] = v
        return v


def _as_label_selector(s: LabelSelector | str | None) -> LabelSelector | None:
    if s is None or isinstance(s, LabelSelector):
        return None if s is None or s.empty else s
    sel = parse_label_selector(s)
    return None if sel.empty else sel


def _as_field_selector(s: FieldSelector | str | None) -> FieldSelector | None:
    if s is None or isinstance(s, FieldSelector):
        return None if s is None or s.empty else s
    sel = parse_field_selector(s)
    return None if sel.empty else sel


class WatcherSource(Protocol):
    """What a watcher needs of the cache feeding it (``watchcache.WatchCache`` is one)."""

    resource: str

    @property
    def applied_revision(self) -> int:
        """The revision of the last event the cache applied."""

    def unregister(self, w: "CacheWatcher") -> None:
        """Stop offering events to ``w`` (it closed)."""


class CacheWatcher:
    """One watcher: filters events, buffers them (bounded) and is iterated by its HTTP handler."""

    def __init__(self, cache: WatcherSource, namespace: str | None, lsel: LabelSelector | None,
                 fsel: FieldSelector | None, max_queue: int) -> None:
        self._cache = cache
        self.namespace = namespace or None
        self._lsel = lsel
        self._fsel = fsel
        self._unfiltered = self.namespace is None and lsel is None and fsel is None
        self._max = max_queue
        self._initial: deque[WatchCacheEvent] = deque()
        self._buf: deque[WatchCacheEvent] = deque()
        self._wake = asyncio.Event()
        self.closed = False
        self.close_reason = ""
        self.last_rv = 0
        self._min_rv = 0  # events at or below the revision the watch started at are skipped
        self._horizon = 0  # once closed: every event up to this revision was offered to it

    def matches(self, e: Entry) -> bool:
        if self.namespace is not None and e.namespace != self.namespace:
            return False
        if self._lsel is not None and not self._lsel.matches(e.labels):
            return False
        if self._fsel is not None and not self._fsel.matches(e.fields):
            return False
        return True

    def _offer(self, ev: _Event) -> None:
        if self.closed or ev.rv <= self._min_rv:
            return
        t = ev.type
        if self._unfiltered:
            out = t
        elif t == "ADDED":
            out = "ADDED" if self.matches(ev.cur) else ""
        elif t == "DELETED":
            out = "DELETED" if ev.prev is not None and self.matches(ev.prev) else ""
        else:
            c = self.matches(ev.cur)
            p = ev.prev is not None and self.matches(ev.prev)
            out = ("MODIFIED" if p else "ADDED") if c else ("DELETED" if p else "")
        if not out:
            return
        # (one revision alone may exceed the bound: a batch never wedges a watcher)
        if len(self._buf) >= self._max and self._buf and self._buf[0].rv != ev.rv:
            TERMINATED.labels(self._cache.resource).inc()
            log.warning("watcher too slow; terminating it", resource=self._cache.resource, queued=len(self._buf))
            # End on a revision boundary: writes committed together share ev.rv and its earlier
            # events are queued (a revision is offered in one go, nothing of it was yielded yet).
            # Drop them, so the client's last resourceVersion is below ev.rv and its resumed watch
            # gets the whole revision, not the rest of it skipped.
            buf = self._buf
            while buf and buf[-1].rv == ev.rv:
                buf.pop()
            self.close("queue overflow", horizon=ev.rv - 1)
            return
        self._buf.append(ev.view(out))
        self._wake.set()

    def close(self, reason: str = "closed", horizon: int | None = None) -> None:
        """Stop offering events; what is queued is still handed out. ``horizon``: the revision up
        to which every event was offered (default: the cache's applied revision, right when the
        cache is not in the middle of offering one)."""
        if not self.closed:
            self.closed = True
            self.close_reason = reason
            self._horizon = self._cache.applied_revision if horizon is None else horizon
            self._cache.unregister(self)
            self._wake.set()

    def bookmark_rv(self) -> int:
        """A resourceVersion such that every event up to it was already yielded or is filtered.
        (Writes committed together share a revision: while one of them is still queued, the
        bookmark stays below that revision.) A closed watcher is offered nothing more, so its
        bookmark never passes the revision it was closed at (``_horizon``): the cache goes on
        applying events, and a BOOKMARK at its newest revision (the one written when a watch
        reaches its ``timeoutSeconds``) made the client resume after events it never got."""
        if not self._buf and not self._initial:
            top = self._horizon if self.closed else self._cache.applied_revision
            return max(top, self.last_rv)
        if self._initial or self._buf[0].type == "BOOKMARK":
            return self.last_rv
        return min(self.last_rv, self._buf[0].rv - 1)

    def pending(self) -> int:
        return len(self._buf) + len(self._initial)

    def __aiter__(self) -> "CacheWatcher":
        return self

    async def __anext__(self) -> WatchCacheEvent:
        while True:
            if self._initial:
                ev = self._initial.popleft()
            elif self._buf:
                ev = self._buf.popleft()
            elif self.closed:
                raise StopAsyncIteration
            else:
                self._wake.clear()
                await self._wake.wait()
                continue
            if ev.type != "BOOKMARK" or ev.rv > self.last_rv:
                self.last_rv = max(self.last_rv, ev.rv)
            return ev


# Field selectors on these fields with "=" are indexed (like kube-apiserver's pod nodeName
# trigger): an event is offered only to the watchers of the values its old and new states have.
_TRIGGER_FIELDS = ("spec.nodeName", "metadata.name")
_ALL = ("*", "")


def _bucket_of(w: CacheWatcher) -> tuple[str, str]:
    if w._fsel is not None:
        for f in _TRIGGER_FIELDS:
            v = w._fsel.value_for(f)
            if v is not None:
                return (f, v)
    if w.namespace is not None:
        return ("ns", w.namespace)
    return _ALL
