"""The objects admission plugins consult (namespaces, ServiceAccounts, LimitRanges,
ResourceQuotas, PriorityClasses, RuntimeClasses, webhook configurations, policies), read from this apiserver's
watch caches -- kube-apiserver's plugins read informers -- so that a request costs a dict
look-up, not an etcd round trip. Decoded objects are memoized by (key, resourceVersion); they
are shared: plugins never modify them. What a cache may not know yet (an object written a
moment ago through another worker) is read from etcd where it matters (``get_live``).
"""

from __future__ import annotations

from typing import Any

from controlplane.apiserver.discovery.registry import ResourceInfo
from controlplane.apiserver.persistence.codec import object_key
from controlplane.apiserver.persistence.watchcache import WatchCache
from controlplane.apiserver.persistence.watchcache_events import Entry

Obj = dict[str, Any]

CORE = ("namespaces", "serviceaccounts", "limitranges", "resourcequotas", "pods", "services", "endpoints")


class Lookups:
    def __init__(self, host: Any) -> None:
        self.host = host
        self.infos: dict[str, ResourceInfo] = {}
        self.caches: dict[str, WatchCache] = {}
        self._memo: dict[str, tuple[int, Obj]] = {}

    async def start(self) -> None:
        reg = self.host.registry
        wanted = [("", p) for p in CORE] + [("scheduling.k8s.io", "priorityclasses"),
                                             ("networking.k8s.io", "ingressclasses"),
                                             ("storage.k8s.io", "storageclasses"),
                                             ("node.k8s.io", "runtimeclasses")]
        for group, plural in wanted:
            info = reg.get(group, "v1", plural)
            if info is None:
                continue
            self.infos[plural] = info
            self.caches[plural] = await self.host.caches.cache_for(info)

    def info(self, plural: str) -> ResourceInfo:
        return self.infos[plural]

    def entry(self, plural: str, namespace: str | None, name: str) -> Entry | None:
        cache = self.caches.get(plural)
        if cache is None:
            return None
        info = self.infos[plural]
        return cache.get(object_key(info, namespace if info.namespaced else None, name))

    def decoded(self, e: Entry) -> Obj:
        hit = self._memo.get(e.key)
        if hit is not None and hit[0] == e.rv:
            return hit[1]
        obj = e.obj()
        if len(self._memo) > 50_000:
            self._memo.clear()
        self._memo[e.key] = (e.rv, obj)
        return obj

    def get(self, plural: str, namespace: str | None, name: str) -> Obj | None:
        e = self.entry(plural, namespace, name)
        return self.decoded(e) if e is not None else None

    async def get_live(self, plural: str, namespace: str | None, name: str) -> Obj | None:
        """From the cache, else from etcd (an object created a moment ago elsewhere)."""
        obj = self.get(plural, namespace, name)
        if obj is not None:
            return obj
        info = self.infos[plural]
        return await self.host.store.get_or_none(info, namespace if info.namespaced else None, name)

    def list_in(self, plural: str, namespace: str) -> list[Obj]:
        cache = self.caches.get(plural)
        if cache is None:
            return []
        return [self.decoded(e) for e in cache.entries_in(namespace)]

    def has_any_in(self, plural: str, namespace: str) -> bool:
        cache = self.caches.get(plural)
        return cache is not None and cache.count_in(namespace) > 0

    def list_all(self, plural: str) -> list[Obj]:
        cache = self.caches.get(plural)
        if cache is None:
            return []
        entries, _ = cache.list()
        return [self.decoded(e) for e in entries]

    def namespace_labels(self, namespace: str) -> dict[str, str] | None:
        e = self.entry("namespaces", None, namespace)
        return e.labels if e is not None else None

    async def namespace_labels_live(self, namespace: str) -> dict[str, str]:
        labels = self.namespace_labels(namespace)
        if labels is not None:
            return labels
        ns = await self.get_live("namespaces", None, namespace)
        return dict(((ns or {}).get("metadata") or {}).get("labels") or {})
