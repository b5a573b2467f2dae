"""The watch caches of one apiserver process: one ``WatchCache`` per served resource, keyed by
its storage prefix (every version of a resource shares one), started on first use and stopped
with the process; ``apiserver_storage_objects`` is refreshed from them.

Neighbours: ``watchcache.py`` (one cache), ``server/app.py`` (owns this), the endpoints (lists,
watches, the cached copy a read-modify-write starts from) and ``server/crds.py`` (a CRD's
custom resources get a cache when it is registered, lose it when it is deleted).
"""

from __future__ import annotations

from prometheus_client import Gauge

from controlplane.apiserver.discovery.registry import ResourceInfo
from controlplane.apiserver.persistence.codec import prefix
from controlplane.apiserver.persistence.watchcache import WatchCache
from controlplane.machinery.fields import custom_fields, fields_for, resource_key
from controlplane.storage.interface import Backend

STORAGE_OBJECTS = Gauge(
    "apiserver_storage_objects", "Number of stored objects at the time of last check split by kind.",
    ["resource"], multiprocess_mode="livemostrecent",  # every worker caches every object
)


class WatchCaches:
    """Every watch cache of this process (see the module docstring)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._by_prefix: dict[str, WatchCache] = {}
        self._selectable: dict[str, tuple[str, ...]] = {}  # custom resources' selectableFields, by prefix

    async def cache_for(self, info: ResourceInfo, selectable: tuple[str, ...] | None = None) -> WatchCache:
        """The resource's cache, started (its initial list done) if it was not yet.

        Custom resources: ``selectable`` (given when their CRD is registered) are the paths of
        its selectableFields, computed for every cached object; a cache made for other paths is
        replaced (its watchers end, their clients watch again)."""
        pfx = prefix(info)
        cache = self._by_prefix.get(pfx)
        if cache is not None and selectable is not None and self._selectable.get(pfx, ()) != selectable:
            await self.drop(info)
            cache = None
        if cache is None:
            if info.is_custom:
                paths = self._selectable[pfx] = selectable or self._selectable.get(pfx, ())
                cache = WatchCache(self.backend, pfx, info.plural,
                                   fields=lambda _resource, obj: custom_fields(paths, obj))
            elif info.storage_group:  # field labels are per group ("jobs.batch"); the core group's by plural
                key = resource_key(info.storage_group, info.plural)  # (a view shares its stored resource's cache)
                cache = WatchCache(self.backend, pfx, info.plural,
                                   fields=lambda _resource, obj: fields_for(key, obj))
            else:
                cache = WatchCache(self.backend, pfx, info.plural)
            self._by_prefix[pfx] = cache
            await cache.start()
        return cache

    def if_ready(self, info: ResourceInfo) -> WatchCache | None:
        """The resource's cache when it has finished its initial list, else None."""
        cache = self._by_prefix.get(prefix(info))
        return cache if cache is not None and cache.ready else None

    async def drop(self, info: ResourceInfo) -> None:
        """Stop and forget the resource's cache (its CRD was deleted)."""
        cache = self._by_prefix.pop(prefix(info), None)
        self._selectable.pop(prefix(info), None)
        if cache is not None:
            await cache.stop()

    async def stop(self) -> None:
        for cache in list(self._by_prefix.values()):
            await cache.stop()
        self._by_prefix.clear()

    def count_objects(self, infos: list[ResourceInfo]) -> None:
        """Refresh ``apiserver_storage_objects`` for ``infos`` (called at scrape time)."""
        for info in infos:
            cache = self._by_prefix.get(prefix(info))
            if cache is not None:
                STORAGE_OBJECTS.labels(info.group_resource).set(len(cache))
