"""The APIServices this apiserver process knows (read from its ``apiservices`` watch cache, so
every worker sees the same ones) and the discovery documents merged from them and the local
registry, as kube-aggregator serves ``/apis`` and ``/apis/<group>``: aggregated groups follow
the built-in ones, ordered by ``groupPriorityMinimum`` (highest first) then name, and their
versions by ``versionPriority`` then Kubernetes' version order.
"""

from __future__ import annotations

from typing import Any

import ujson

from controlplane.apiserver.discovery.registry import Registry, ResourceInfo, version_priority
from controlplane.apiserver.persistence.caches import WatchCaches

Obj = dict[str, Any]


def is_remote(apiservice: Obj) -> bool:
    return bool((apiservice.get("spec") or {}).get("service"))


def is_available(apiservice: Obj) -> bool:
    for c in (apiservice.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Available":
            return c.get("status") == "True"
    return False


class APIServices:
    """Decoded APIServices from the watch cache, refreshed when its revision moves."""

    def __init__(self, caches: WatchCaches, registry: Registry) -> None:
        self.caches = caches
        self.registry = registry
        self._rev = -1
        self._items: list[Obj] = []
        self._by_gv: dict[tuple[str, str], Obj] = {}

    @property
    def info(self) -> ResourceInfo:
        info = self.registry.get("apiregistration.k8s.io", "v1", "apiservices")
        assert info is not None
        return info

    def all(self) -> list[Obj]:
        cache = self.caches.if_ready(self.info)
        if cache is None:
            return self._items
        entries, rev = cache.list()
        if rev != self._rev:
            items = [ujson.loads(e.raw) for e in entries]
            self._items = items
            self._by_gv = {((a.get("spec") or {}).get("group") or "", (a.get("spec") or {}).get("version") or ""): a
                           for a in items}
            self._rev = rev
        return self._items

    def get(self, group: str, version: str) -> Obj | None:
        self.all()
        return self._by_gv.get((group, version))

    def remote(self, group: str, version: str) -> Obj | None:
        """The APIService that takes ``/apis/<group>/<version>`` elsewhere, if any."""
        a = self.get(group, version)
        return a if a is not None and is_remote(a) else None

    def remote_groups(self) -> set[str]:
        return {(a.get("spec") or {}).get("group") or "" for a in self.all() if is_remote(a)}


def _gv(group: str, version: str) -> Obj:
    return {"groupVersion": f"{group}/{version}", "version": version}


def aggregated_groups(apiservices: list[Obj], local: dict[str, list[str]]) -> list[Obj]:
    """The groups APIServices send elsewhere, as ``APIGroup`` bodies: by ``groupPriorityMinimum``
    then name, each with its remote versions (``versionPriority``, then Kubernetes' order)
    followed by the versions served locally."""
    by_group: dict[str, list[Obj]] = {}
    for a in apiservices:
        spec = a.get("spec") or {}
        if not is_remote(a) or not spec.get("group"):
            continue
        by_group.setdefault(spec["group"], []).append(a)
    docs = []
    for group, items in by_group.items():
        items.sort(key=lambda a: (-int((a.get("spec") or {}).get("versionPriority") or 0),
                                  version_priority((a.get("spec") or {}).get("version") or "")))
        versions = [(a.get("spec") or {}).get("version") or "" for a in items]
        versions += [v for v in local.get(group, []) if v not in versions]
        prio = max(int((a.get("spec") or {}).get("groupPriorityMinimum") or 0) for a in items)
        gvs = [_gv(group, v) for v in versions]
        docs.append((-prio, group, {"name": group, "versions": gvs, "preferredVersion": gvs[0]}))
    return [d for _, _, d in sorted(docs, key=lambda t: (t[0], t[1]))]


def group_list(local_doc: Obj, apiservices: list[Obj], local: dict[str, list[str]]) -> Obj:
    """``/apis``: the local groups (those not taken over by an APIService) then the
    aggregated ones."""
    aggregated = aggregated_groups(apiservices, local)
    names = {g["name"] for g in aggregated}
    groups = [g for g in local_doc.get("groups") or [] if g.get("name") not in names] + aggregated
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def group(name: str, apiservices: list[Obj], local: dict[str, list[str]]) -> Obj | None:
    """``/apis/<group>`` of a group that has an APIService with a service (None otherwise)."""
    for doc in aggregated_groups(apiservices, local):
        if doc["name"] == name:
            return {"kind": "APIGroup", "apiVersion": "v1", **doc}
    return None
