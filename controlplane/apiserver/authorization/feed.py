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


def pinned_to(pv: dict[str, Any], node: str) -> bool:
    """A volume whose node affinity names only this node (``kubernetes.io/hostname In [node]``
    in every term, as local-path and local volumes are) lives on the node: the node may read it."""
    terms = (((pv.get("spec") or {}).get("nodeAffinity") or {}).get("required") or {}).get("nodeSelectorTerms") or []
    if not terms:
        return False
    for t in terms:
        exprs = (t or {}).get("matchExpressions") or []
        if not any(x.get("key") == "kubernetes.io/hostname" and x.get("operator") == "In"
                   and x.get("values") == [node] for x in exprs):
            return False
    return True


class CachedPodGraph:
    """``has(node, kind, namespace, name)`` over the pod watch cache: the node's pods in that
    namespace (by their indexed ``spec.nodeName``) are decoded and their references read; the
    references of a pod are remembered per (key, resourceVersion)."""

    def __init__(self, pods: WatchCache, memo_size: int = 20_000) -> None:
        self.pods = pods
        self.memo_size = memo_size
        self._refs: OrderedDict[tuple[str, int], frozenset[tuple[str, str]]] = OrderedDict()
        # PersistentVolumes by name (``volume_key`` gives their cache key): a node reaches a
        # volume through the claim its ``claimRef`` names, as Kubernetes' graph pod -> pvc -> pv
        self.volumes: WatchCache | None = None
        self.volume_key: Any = None

    def has(self, node: str, kind: str, namespace: str, name: str) -> bool:
        if kind == "PersistentVolume":
            return self._has_volume(node, name)
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

    def _has_volume(self, node: str, name: str) -> bool:
        if self.volumes is None or self.volume_key is None:
            return False
        e = self.volumes.get(self.volume_key(name))
        if e is None:
            # nothing to protect: the read answers 404, which is how a node agent learns that a
            # local-path volume it keeps data for is gone (agent/localstorage.py)
            return True
        pv = ujson.loads(e.raw)
        if pinned_to(pv, node):
            return True
        ref = (pv.get("spec") or {}).get("claimRef") or {}
        return bool(ref.get("name")) and self.has(node, "PersistentVolumeClaim", ref.get("namespace") or "", ref["name"])
