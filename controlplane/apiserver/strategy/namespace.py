"""Namespaces (``pkg/registry/core/namespace``): a new namespace is ``Active`` with the
``kubernetes`` finalizer in ``spec.finalizers``; deleting it marks it ``Terminating`` and it
stays while ``spec.finalizers`` is not empty (the namespace controller empties the namespace,
then clears them through ``/finalize``, the only change that subresource makes). ``default``,
``kube-system`` and ``kube-public`` may not be deleted. Names are DNS-1123 labels.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from controlplane.apiserver.discovery.registry import ResourceInfo
from controlplane.apiserver.meta import errors
from controlplane.apiserver.strategy.base import Strategy
from controlplane.apiserver.strategy.podtemplate import sub
from controlplane.machinery.timestamps import rfc3339

Obj = dict[str, Any]
UNDELETABLE = ("default", "kube-system", "kube-public")


class NamespaceStrategy(Strategy):
    name_rule = "label"

    def set_defaults(self, obj: Obj) -> None:
        name = (obj.get("metadata") or {}).get("name")
        if name:
            sub(sub(obj, "metadata"), "labels").setdefault("kubernetes.io/metadata.name", name)
        spec = sub(obj, "spec")
        if spec.get("finalizers") is None:  # create; an emptied list (after finalize) stays empty
            spec["finalizers"] = ["kubernetes"]
        sub(obj, "status").setdefault("phase", "Active")

    def prepare_for_create(self, info: ResourceInfo, obj: Obj) -> None:
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj["status"] = {"phase": "Active"}

    def prepare_finalize(self, info: ResourceInfo, old: Obj, new: Obj) -> Obj:
        """``namespaces/<name>/finalize``: only spec.finalizers changes (the namespace controller)."""
        merged = copy.deepcopy(old)
        merged.setdefault("spec", {})["finalizers"] = list((new.get("spec") or {}).get("finalizers") or [])
        return merged

    def check_delete(self, info: ResourceInfo, name: str) -> None:
        if name in UNDELETABLE:
            raise errors.ApiError(403, "Forbidden", f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                                  details={"name": name, "kind": "namespaces"})

    def begin_termination(self, obj: Obj, current: Obj, finalizers: list[str]) -> Obj | None:
        if not (obj.get("spec") or {}).get("finalizers"):
            return None
        meta = obj["metadata"]
        if not meta.get("deletionTimestamp"):
            obj.setdefault("status", {})["phase"] = "Terminating"
            meta["deletionTimestamp"] = rfc3339(time.time())
            meta["deletionGracePeriodSeconds"] = 0
        meta["finalizers"] = finalizers
        if not finalizers and meta.get("finalizers") is not None and not current["metadata"].get("finalizers"):
            meta.pop("finalizers", None)
        return obj

    def deletion_blocked(self, obj: Obj) -> bool:
        return bool((obj.get("spec") or {}).get("finalizers"))
