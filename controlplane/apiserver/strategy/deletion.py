"""Graceful deletion (kube-apiserver's ``rest.BeforeDelete``): what a delete request turns an
object into, calling the resource's strategy for what differs.

The propagation policy adds the ``foregroundDeletion`` or ``orphan`` finalizer for the garbage
collector (``Background`` drops them before deletion started). An object with finalizers, or
with a grace period (the strategy's ``grace_period``: a pod bound to a node), gets
``deletionTimestamp`` (now + grace) and stays; one without either leaves storage at once. A
resource that runs its own termination (a namespace emptied by its controller) answers
``begin_termination`` instead. Caller: ``endpoints/delete.py``; nothing here touches storage.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from controlplane.apiserver.discovery.registry import ResourceInfo
from controlplane.apiserver.strategy.generic import strategy_of
from controlplane.machinery.timestamps import rfc3339

Obj = dict[str, Any]


def graceful(info: ResourceInfo, current: Obj, grace: int | None, propagation: str | None) -> Obj | None:
    """The object marked for deletion, or None when it can leave storage now."""
    strategy = strategy_of(info)
    obj = copy.deepcopy(current)
    meta = obj["metadata"]
    fins = list(meta.get("finalizers") or [])
    if propagation == "Foreground" and "foregroundDeletion" not in fins:
        fins.append("foregroundDeletion")
    elif propagation == "Orphan" and "orphan" not in fins:
        fins.append("orphan")
    elif propagation == "Background":
        fins = [f for f in fins if f not in ("foregroundDeletion", "orphan")] if not meta.get("deletionTimestamp") else fins
    grace = max(int(strategy.grace_period(obj, grace)), 0)
    terminating = strategy.begin_termination(obj, current, fins)
    if terminating is not None:
        return terminating
    if not fins and grace == 0:
        return None
    now = time.time()
    if meta.get("deletionTimestamp"):
        old_grace = int(meta.get("deletionGracePeriodSeconds") or 0)
        if grace < old_grace:
            meta["deletionGracePeriodSeconds"] = grace
            meta["deletionTimestamp"] = rfc3339(now + grace)
            if grace == 0 and not fins:
                return None
    else:
        meta["deletionTimestamp"] = rfc3339(now + grace)
        meta["deletionGracePeriodSeconds"] = grace
        if strategy.tracks_generation:
            meta["generation"] = int(meta.get("generation") or 0) + 1
    if fins:
        meta["finalizers"] = fins
    return obj
