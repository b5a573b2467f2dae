"""Feeding the authorizers from the apiserver's watch caches (kube-apiserver's authorizers read
informers): ``RBACFeed`` keeps the ``RBACStore`` in step with one RBAC resource,
``NodeGraphFeed`` keeps the Node authorizer's graph in step with pods. Each is a watch-cache
observer (``persistence.watchcache.WatchCache.observe``): ``reset(objects)`` after a (re)list,
``apply(type, object)`` for every ADDED/MODIFIED/DELETED event, in revision order.
"""

from __future__ import annotations

from typing import Any

from controlplane.apiserver.authorization.node import NodeGraph
from controlplane.apiserver.authorization.rbac import RBACStore


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    md = obj.get("metadata") or {}
    return (md.get("namespace") or "", md.get("name") or "")


class RBACFeed:
    def __init__(self, store: RBACStore, kind: str) -> None:
        self.store = store
        self.kind = kind
        self._known: dict[tuple[str, str], dict[str, Any]] = {}

    def reset(self, objects: list[dict[str, Any]]) -> None:
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


class NodeGraphFeed:
    def __init__(self, graph: NodeGraph) -> None:
        self.graph = graph
        self._known: set[tuple[str, str]] = set()

    def reset(self, objects: list[dict[str, Any]]) -> None:
        fresh = {_key(o) for o in objects}
        for ns, name in self._known - fresh:
            self.graph.remove_pod({"metadata": {"namespace": ns, "name": name}})
        for o in objects:
            self.graph.apply_pod(o)
        self._known = fresh

    def apply(self, etype: str, obj: dict[str, Any]) -> None:
        if etype == "DELETED":
            self._known.discard(_key(obj))
            self.graph.remove_pod(obj)
        else:
            self._known.add(_key(obj))
            self.graph.apply_pod(obj)
