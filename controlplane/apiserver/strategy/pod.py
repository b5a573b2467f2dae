"""Pods (``pkg/registry/core/pod/strategy.go``): Kubernetes' pod defaults (what the admission
chain adds -- ServiceAccount, Priority, DefaultTolerationSeconds -- is in ``admission/``), the
deprecated ``serviceAccount`` kept equal to ``serviceAccountName``, the ``Pending`` phase and
QoS class a new pod starts with, and graceful deletion: a pod bound to a
node stays ``terminationGracePeriodSeconds`` (or the requested grace) until its node agent
deletes it with grace 0; an unbound or finished pod goes at once.
Updates through ``pods/ephemeralcontainers`` (``podEphemeralContainersStrategy``) change only
``spec.ephemeralContainers`` (and managedFields) and follow their own validation.
"""

from __future__ import annotations

import copy
from typing import Any

from controlplane.apiserver.discovery.registry import ResourceInfo
from controlplane.apiserver.strategy.base import Strategy, warn_fields
from controlplane.apiserver.validation import objects as validation
from controlplane.apiserver.strategy.podtemplate import pod_spec_defaults, sub

Obj = dict[str, Any]


def qos_class(spec: Obj) -> str:
    """The pod's QoS class (Guaranteed, Burstable or BestEffort) from its containers' resources."""
    containers = [c for c in (spec.get("containers") or []) + (spec.get("initContainers") or [])
                  if isinstance(c, dict)]
    any_set = False
    guaranteed = True
    for c in containers:
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        if req or lim:
            any_set = True
        for r in ("cpu", "memory"):
            if r not in lim or str(req.get(r, lim[r])) != str(lim[r]):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


class PodStrategy(Strategy):
    def set_defaults(self, obj: Obj) -> None:
        spec = sub(obj, "spec")
        pod_spec_defaults(spec, is_pod=True)
        spec.setdefault("enableServiceLinks", True)
        if spec.get("serviceAccountName"):  # (the v1 conversion of DeprecatedServiceAccount)
            spec["serviceAccount"] = spec["serviceAccountName"]
        elif spec.get("serviceAccount"):
            spec["serviceAccountName"] = spec["serviceAccount"]
        status = sub(obj, "status")
        status.setdefault("phase", "Pending")
        status.setdefault("qosClass", qos_class(spec))

    def prepare_for_create(self, info: ResourceInfo, obj: Obj) -> None:
        obj["status"] = {"phase": "Pending"}

    def prepare_ephemeral_containers(self, info: ResourceInfo, old: Obj, new: Obj) -> Obj:
        """``dropNonEphemeralContainerUpdates``: the old pod with the new ephemeral containers;
        metadata other than managedFields is kept as it was (``ResetObjectMetaForStatus``)."""
        merged = copy.deepcopy(old)
        spec = sub(merged, "spec")
        eph = (new.get("spec") or {}).get("ephemeralContainers") if isinstance(new.get("spec"), dict) else None
        if eph:
            spec["ephemeralContainers"] = eph
        else:
            spec.pop("ephemeralContainers", None)
        if "managedFields" in (new.get("metadata") or {}):
            merged["metadata"]["managedFields"] = new["metadata"]["managedFields"]
        return merged

    def default_and_validate_ephemeral_containers(self, info: ResourceInfo, obj: Obj, *, strict: bool,
                                                  old: Obj) -> Obj:
        obj = self.default(obj)
        warn_fields(validation.validate(obj, info.gvk, strict=strict, is_update=True, old=old,
                                 subresource="ephemeralcontainers"))
        return obj

    def grace_period(self, obj: Obj, requested: int | None) -> int:
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        if not spec.get("nodeName") or status.get("phase") in ("Succeeded", "Failed"):
            return 0
        if requested is None:
            return int(spec.get("terminationGracePeriodSeconds", 30) or 0)
        return requested
