"""Informers: one list+watch per resource feeding an in-memory cache with indexes.

``Informer.start(stop_event)`` lists, then watches from the list's resourceVersion. A
dropped stream is resumed from the last resourceVersion known complete (bookmarks included;
``resume.ResumePoint``: writes the apiserver commits together share one, so the one of the last
event may still have events to come) without handing out an event twice; a 410
``Expired`` makes it relist and replay the difference to handlers (ADDED / MODIFIED /
DELETED), so consumers stay level-based. Handlers are plain callables
``handler(event_type, obj, old)`` that should only enqueue keys; reconcilers read from the
cache (``get``, ``list``, ``by_index``). Cached objects are shared: never mutate them —
``copy.deepcopy`` first.

Built-in indexes: ``namespace``, ``owner`` (uid of every ownerReference), ``node``
(``spec.nodeName``) and ``uid``. Used by the controllers (``controlplane.controllers``), the
node agent and the scheduler; ``manager.Manager`` shares one informer per resource.
"""

from __future__ import annotations

import asyncio
import random
import weakref
from typing import Any, Callable, ClassVar, Iterable

from controlplane.client.faults import count_transient
from controlplane.client.resume import ResumePoint
from controlplane.client.resources import Resource
from controlplane.client.rest import ApiStatusError, RestClient
from controlplane.log import get_logger
from controlplane.machinery.selectors import LabelSelector, parse_label_selector

log = get_logger(__name__)

Handler = Callable[[str, dict, "dict | None"], None]
IndexFunc = Callable[[dict], Iterable[str]]


def object_key(obj: dict) -> str:
    """``namespace/name`` (or ``name`` for cluster-scoped objects), as client-go's MetaNamespaceKeyFunc."""
    md = obj.get("metadata") or {}
    ns = md.get("namespace")
    return f"{ns}/{md.get('name')}" if ns else str(md.get("name"))


def split_key(key: str) -> tuple[str | None, str]:
    ns, sep, name = key.partition("/")
    return (ns, name) if sep else (None, ns)


def _idx_namespace(obj: dict) -> Iterable[str]:
    ns = (obj.get("metadata") or {}).get("namespace")
    return [ns] if ns else []


def _idx_owner(obj: dict) -> Iterable[str]:
    return [r["uid"] for r in (obj.get("metadata") or {}).get("ownerReferences") or [] if r.get("uid")]


def _idx_node(obj: dict) -> Iterable[str]:
    n = (obj.get("spec") or {}).get("nodeName")
    return [n] if n else []


def _idx_uid(obj: dict) -> Iterable[str]:
    u = (obj.get("metadata") or {}).get("uid")
    return [u] if u else []


def _label_matcher(selector: Any) -> Callable[[dict], bool]:
    """A predicate on labels from a LabelSelector dict, a selector string, or a callable."""
    if callable(selector):
        return selector
    sel = LabelSelector.from_dict(selector) if isinstance(selector, dict) else parse_label_selector(selector)
    return sel.matches


class Informer:
    """List+watch cache of one resource (optionally one namespace / label / field selector)."""

    # every informer of the process: the component's /readyz "informer-sync" check reads it
    live: ClassVar["weakref.WeakSet[Informer]"] = weakref.WeakSet()

    def __init__(self, client: RestClient, resource: Resource, *, namespace: str | None = None,
                 label_selector: str | None = None, field_selector: str | None = None,
                 resync_period: float | None = None, watch_timeout: int = 300, indexes: bool = True,
                 transform: Callable[[dict], dict] | None = None) -> None:
        """``indexes=False``: no built-in indexes (namespace, owner, node, uid) for a consumer
        that never queries them (``add_index`` still works); saves work on every event.
        ``transform`` (client-go's ``SetTransform``): applied to every object before it is
        cached or handed to handlers, e.g. to keep only the fields a consumer reads (it must
        keep ``metadata.name``/``namespace``/``resourceVersion``)."""
        self.client = client
        self.resource = resource
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.resync_period = resync_period
        self.watch_timeout = watch_timeout
        self.transform = transform
        self._items: dict[str, dict] = {}
        self._handlers: list[Handler] = []
        self._index_funcs: dict[str, IndexFunc] = {
            "namespace": _idx_namespace, "owner": _idx_owner, "node": _idx_node, "uid": _idx_uid} if indexes else {}
        self._indexes: dict[str, dict[str, set[str]]] = {n: {} for n in self._index_funcs}
        self._synced = asyncio.Event()
        self.last_resource_version: str | None = None  # the last one seen (event or bookmark)
        self._resume = ResumePoint()  # where a new watch starts
        self.relists = 0
        self.started = False  # start() was called (a standby's informers wait for leadership)
        Informer.live.add(self)

    # -- configuration --------------------------------------------------------------------

    def add_handler(self, handler: Handler) -> None:
        """Call ``handler(type, obj, old)`` for ADDED/MODIFIED/DELETED (and SYNC on resync)."""
        self._handlers.append(handler)
        for obj in list(self._items.values()):
            handler("ADDED", obj, None)

    def add_index(self, name: str, func: IndexFunc) -> None:
        if name in self._index_funcs:
            raise ValueError(f"index {name!r} already registered")
        self._index_funcs[name] = func
        self._indexes[name] = {}
        for key, obj in self._items.items():
            for v in func(obj):
                self._indexes[name].setdefault(v, set()).add(key)

    # -- cache reads ----------------------------------------------------------------------

    def has_synced(self) -> bool:
        return self._synced.is_set()

    async def wait_for_sync(self, timeout: float | None = None) -> bool:
        try:
            await asyncio.wait_for(self._synced.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    def get(self, key: str) -> dict | None:
        return self._items.get(key)

    def get_by(self, namespace: str | None, name: str) -> dict | None:
        return self._items.get(f"{namespace}/{name}" if namespace else name)

    def keys(self) -> list[str]:
        return list(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def list(self, namespace: str | None = None, selector: Any = None) -> list[dict]:
        """Cached objects, optionally in one namespace and matching a label selector (a
        LabelSelector dict, a selector string, or a predicate on the labels dict)."""
        if namespace is not None and "namespace" not in self._indexes:
            objs = [o for o in self._items.values() if (o.get("metadata") or {}).get("namespace") == namespace]
        elif namespace is not None:
            objs = [self._items[k] for k in self._indexes["namespace"].get(namespace, ())]
        else:
            objs = list(self._items.values())
        if selector is None:
            return objs
        match = _label_matcher(selector)
        return [o for o in objs if match((o.get("metadata") or {}).get("labels") or {})]

    def by_index(self, index: str, value: str) -> list[dict]:
        return [self._items[k] for k in self._indexes[index].get(value, ())]

    def by_owner(self, uid: str) -> list[dict]:
        return self.by_index("owner", uid)

    def by_node(self, node_name: str) -> list[dict]:
        return self.by_index("node", node_name)

    def by_uid(self, uid: str) -> dict | None:
        keys = self._indexes["uid"].get(uid)
        return self._items[next(iter(keys))] if keys else None

    # -- cache writes ---------------------------------------------------------------------

    def _index_add(self, key: str, obj: dict) -> None:
        if not self._index_funcs:
            return
        for name, func in self._index_funcs.items():
            for v in func(obj):
                self._indexes[name].setdefault(v, set()).add(key)

    def _index_remove(self, key: str, obj: dict) -> None:
        if not self._index_funcs:
            return
        for name, func in self._index_funcs.items():
            for v in func(obj):
                s = self._indexes[name].get(v)
                if s is not None:
                    s.discard(key)
                    if not s:
                        del self._indexes[name][v]

    def _upsert(self, obj: dict) -> None:
        key = object_key(obj)
        old = self._items.get(key)
        if old is not None:
            self._index_remove(key, old)
        self._items[key] = obj
        self._index_add(key, obj)
        self._notify("MODIFIED" if old is not None else "ADDED", obj, old)

    def _remove(self, obj: dict) -> None:
        key = object_key(obj)
        old = self._items.pop(key, None)
        if old is not None:
            self._index_remove(key, old)
        self._notify("DELETED", obj, old)

    def _notify(self, etype: str, obj: dict, old: dict | None) -> None:
        for h in self._handlers:
            try:
                h(etype, obj, old)
            except Exception:
                log.exception("informer handler failed", resource=self.resource.plural)

    def _replace(self, items: list[dict]) -> None:
        """Install a fresh list, replaying the difference to the handlers."""
        fresh = {object_key(o): o for o in items}
        for key in [k for k in self._items if k not in fresh]:
            self._remove(self._items[key])
        for key, obj in fresh.items():
            old = self._items.get(key)
            rv_old = (old or {}).get("metadata", {}).get("resourceVersion")
            if old is None or rv_old != obj.get("metadata", {}).get("resourceVersion"):
                self._upsert(obj)

    # -- run ------------------------------------------------------------------------------

    async def _list(self) -> str:
        if self.transform is not None:
            return await self._list_transformed()
        lst = await self.client.list_all(self.resource, self.namespace, label_selector=self.label_selector,
                                         field_selector=self.field_selector)
        items = lst.get("items") or []
        for o in items:
            o.setdefault("kind", self.resource.kind)
            o.setdefault("apiVersion", self.resource.api_version)
        self._replace(items)
        return str((lst.get("metadata") or {}).get("resourceVersion") or "")

    async def _list_transformed(self, page_size: int = 500) -> str:
        """The list page by page, each object transformed as its page arrives, so the full
        objects of one page at most are alive at once (150,000 pods would be gigabytes)."""
        items: list[dict] = []
        cont: str | None = None
        rv = ""
        kind, api_version = self.resource.kind, self.resource.api_version
        transform = self.transform
        assert transform is not None
        while True:
            page = await self.client.list(self.resource, self.namespace, label_selector=self.label_selector,
                                          field_selector=self.field_selector, limit=page_size, continue_=cont)
            meta = page.get("metadata") or {}
            rv = rv or str(meta.get("resourceVersion") or "")
            for o in page.get("items") or []:
                o.setdefault("kind", kind)
                o.setdefault("apiVersion", api_version)
                items.append(transform(o))
            cont = meta.get("continue")
            del page
            if not cont:
                break
        self._replace(items)
        return rv

    async def start(self, stop_event: asyncio.Event) -> None:
        """Runnable: list, mark synced, then watch until ``stop_event`` is set."""
        self.started = True
        resync = asyncio.create_task(self._resync_loop(stop_event)) if self.resync_period else None
        try:
            await self._run(stop_event)
        finally:
            if resync:
                resync.cancel()

    async def _run(self, stop_event: asyncio.Event) -> None:
        backoff = 0.2
        need_list = True
        while not stop_event.is_set():
            try:
                if need_list:
                    self.last_resource_version = await self._list()
                    self._resume.reset(self.last_resource_version)
                    self.relists += 1
                    need_list = False
                    self._synced.set()
                await self._watch(stop_event)
                backoff = 0.2
            except ApiStatusError as e:
                count_transient(f"informer/{self.resource.plural}", e)
                if e.expired:
                    log.info("watch expired, relisting", resource=self.resource.plural)
                    need_list = True
                    continue
                log.warning("list/watch failed", resource=self.resource.plural, error=str(e))
                await _sleep_or_stop(stop_event, backoff * (1 + random.random() * 0.2))
                backoff = min(backoff * 2, 5.0)
            except (ValueError, KeyError, TypeError) as e:  # a garbled stream: relist, as client-go's reflector
                count_transient(f"informer/{self.resource.plural}", e)
                log.warning("watch stream unreadable; relisting", resource=self.resource.plural, error=repr(e))
                need_list = True
                await _sleep_or_stop(stop_event, backoff * (1 + random.random() * 0.2))
                backoff = min(backoff * 2, 5.0)

    async def _watch(self, stop_event: asyncio.Event) -> None:
        """Consume one watch stream until it ends or ``stop_event`` is set. The stream is read
        by a child task and this one waits once for either, so each event costs no extra
        task or ``asyncio.wait`` (a watch delivers thousands of events per second)."""
        stream = self.client.watch(self.resource, self.namespace, resource_version=self._resume.rv,
                                   label_selector=self.label_selector, field_selector=self.field_selector,
                                   timeout_seconds=self.watch_timeout)
        if stop_event.is_set():
            await stream.aclose()
            return
        reader = asyncio.ensure_future(self._consume(stream))
        stopper = asyncio.ensure_future(stop_event.wait())
        try:
            await asyncio.wait({reader, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
            if not reader.done():
                reader.cancel()
            await asyncio.gather(reader, stopper, return_exceptions=True)
            await stream.aclose()
        if not reader.cancelled() and reader.exception() is not None:
            raise reader.exception()  # type: ignore[misc]

    async def _consume(self, stream: Any) -> None:
        kind, api_version = self.resource.kind, self.resource.api_version
        resume = self._resume
        async for etype, obj in stream:
            md = obj.get("metadata") or {}
            rv = md.get("resourceVersion")
            if etype == "BOOKMARK":
                if rv:
                    self.last_resource_version = rv
                    resume.bookmark(rv)
                continue
            if not resume.event(rv, object_key(obj)):
                continue  # already applied before the previous stream broke
            if "kind" not in obj:
                obj["kind"] = kind
            if "apiVersion" not in obj:
                obj["apiVersion"] = api_version
            if self.transform is not None:
                obj = self.transform(obj)
            if etype in ("ADDED", "MODIFIED"):
                self._upsert(obj)
            elif etype == "DELETED":
                self._remove(obj)
            if rv:
                self.last_resource_version = rv

    async def _resync_loop(self, stop_event: asyncio.Event) -> None:
        assert self.resync_period
        while not stop_event.is_set():
            await _sleep_or_stop(stop_event, self.resync_period)
            for obj in list(self._items.values()):
                self._notify("SYNC", obj, obj)


async def _sleep_or_stop(stop_event: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop_event.wait(), seconds)
    except asyncio.TimeoutError:
        pass
