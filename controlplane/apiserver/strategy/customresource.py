"""Custom resources (apiextensions-apiserver's ``customresource`` strategy): validated, pruned
and defaulted against their version's ``openAPIV3Schema`` (``crd/schema.py``; unknown fields
are warnings, or a 400 under ``fieldValidation=Strict``), metadata checked like any object,
stored at the CRD's storage version (``None`` conversion: only ``apiVersion`` changes), and
``metadata.generation`` tracked. One instance serves every custom resource: what differs
between them is on their ``ResourceInfo`` (schema, versions).
"""

from __future__ import annotations

from typing import Any

from controlplane.apiserver.crd.schema import validate_and_prune
from controlplane.apiserver.discovery.registry import ResourceInfo
from controlplane.apiserver.meta.jsonutil import path_get
from controlplane.apiserver.strategy.base import Strategy, warn_fields

Obj = dict[str, Any]


class CustomResourceStrategy(Strategy):
    tracks_generation = True

    def default_and_validate(self, info: ResourceInfo, obj: Obj, *, strict: bool, old: Obj | None) -> Obj:
        if info.schema is not None:
            found: list[str] = []
            obj = validate_and_prune(obj, info.schema, kind=info.kind, name=(obj.get("metadata") or {}).get("name", ""),
                                     group=info.group, strict=strict, warnings=found, old=old)
            warn_fields(found)
        warn_fields(self.validate(info, obj, strict=strict, old=old))  # metadata (no built-in schema or rules)
        obj["apiVersion"] = f"{info.group}/{info.storage_version}"
        return obj

    def scale_paths(self, info: ResourceInfo) -> tuple[str, str]:
        scale = info.scale or {}
        return scale.get("specReplicasPath", ".spec.replicas"), scale.get("statusReplicasPath", ".status.replicas")

    def scale_selector(self, info: ResourceInfo, obj: Obj) -> str:
        path = (info.scale or {}).get("labelSelectorPath", "")
        return (path_get(obj, path) or "") if path else ""


CUSTOM_RESOURCE = CustomResourceStrategy()
