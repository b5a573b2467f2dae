"""Feeding the authorizers from the apiserver's watch caches (kube-apiserver's authorizers read
informers): ``RBACFeed`` keeps the ``RBACStore`` in step with one RBAC resource (a watch-cache
observer, ``persistence.watchcache.WatchCache.observe``: ``reset(objects)`` after a (re)list,
``apply(type, object)`` for every ADDED/MODIFIED/DELETED event, in revision order), and
``CachedPodGraph`` answers the Node authorizer's "does a pod of this node reference that
object" from the pod watch cache itself, on demand -- no second copy of every pod (150,000
pods cost nothing until a node asks, and a node asks rarely: when its pods start).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Iterable

import ujson

from controlplane.apiserver.authorization.node import pod_references
from controlplane.apiserver.authorization.rbac import RBACStore
from controlplane.apiserver.persistence.watchcache import WatchCache


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    md = obj.get("metadata") or {}
    return (md.get("namespace") or "", md.get("name") or "")


class RBACFeed:
    def __init__(self, store: RBACStore, kind: str) -> None:
        self.store = store
        self.kind = kind
        self._known: dict[tuple[str, str], dict[str, Any]] = {}

    def reset(self, objects: Iterable[dict[str, Any]]) -> None:
        fresh = {_key(o): o for o in objects}
        for k, old in list(self._known.items()):
            if k not in fresh:
                self.store.remove(self.kind, old)
        for k, o in fresh.items():
            self.store.apply(self.kind, o)
        self._known = fresh

    def apply(self, etype: str, obj: dict[str, Any]) -> None:
        k = _key(obj)
        if etype == "DELETED":
            self._known.pop(k, None)
            self.store.remove(self.kind, obj)
        else:
            self._known[k] = obj
            self.store.apply(self.kind, obj)


class CachedPodGraph:
    """``has(node, kind, namespace, name)`` over the pod watch cache: the node's pods in that
    namespace (by their indexed ``spec.nodeName``) are decoded and their references read; the
    references of a pod are remembered per (key, resourceVersion)."""

    def __init__(self, pods: WatchCache, memo_size: int = 20_000) -> None:
        self.pods = pods
        self.memo_size = memo_size
        self._refs: OrderedDict[tuple[str, int], frozenset[tuple[str, str]]] = OrderedDict()

    def has(self, node: str, kind: str, namespace: str, name: str) -> bool:
        want = (kind, name)
        for e in self.pods.entries_in(namespace):
            if e.fields.get("spec.nodeName") != node:
                continue
            refs = self._refs.get((e.key, e.rv))
            if refs is None:
                refs = frozenset(pod_references(ujson.loads(e.raw)))
                self._refs[(e.key, e.rv)] = refs
                if len(self._refs) > self.memo_size:
                    self._refs.popitem(last=False)
            if want in refs:
                return True
        return False
