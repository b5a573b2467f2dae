"""The storage admission plugins of kube-apiserver (``plugin/pkg/admission/storage``):

- **DefaultStorageClass** (``storageclass/setdefault``): a PersistentVolumeClaim created with
  no ``spec.storageClassName`` at all (an empty string is an explicit "no class") and no legacy
  ``volume.beta.kubernetes.io/storage-class`` annotation gets the class annotated
  ``storageclass.kubernetes.io/is-default-class: "true"`` (the newest when several, as since
  Kubernetes 1.28); none marked: nothing changes.
- **StorageObjectInUseProtection** (``storageobjectinuseprotection``): every new claim gets the
  ``kubernetes.io/pvc-protection`` finalizer and every new volume ``kubernetes.io/pv-protection``;
  the pvc-protection / pv-protection controllers remove them once nothing uses the object.
- **PersistentVolumeClaimResize** (``persistentvolume/resize``): a bound claim's storage request
  may grow only when its StorageClass says ``allowVolumeExpansion: true``.

StorageClasses are read from the apiserver's watch cache (``lookups.py``).
"""

from __future__ import annotations

from typing import Any

from controlplane.apiserver.admission.attributes import CREATE, UPDATE, Attributes, forbidden
from controlplane.apiserver.admission.lookups import Lookups
from controlplane.apiserver.admission.plugin import Plugin
from controlplane.apiserver.discovery.registry import ResourceInfo
from controlplane.machinery import volumes as V
from controlplane.machinery.quantity import parse_quantity

Obj = dict[str, Any]
DEFAULT_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
BETA_DEFAULT_ANNOTATION = "storageclass.beta.kubernetes.io/is-default-class"
BETA_CLASS_ANNOTATION = V.ANN_BETA_CLASS
PVC_PROTECTION = V.PVC_PROTECTION
PV_PROTECTION = V.PV_PROTECTION
_meta = V.meta


def default_storage_class(classes: list[Obj]) -> str | None:
    """The default StorageClass's name among ``classes`` (the newest when several)."""
    marked = [c for c in classes if (_meta(c).get("annotations") or {}).get(DEFAULT_ANNOTATION) == "true"
              or (_meta(c).get("annotations") or {}).get(BETA_DEFAULT_ANNOTATION) == "true"]
    if not marked:
        return None
    newest = max(marked, key=lambda c: (_meta(c).get("creationTimestamp") or "", _meta(c).get("name") or ""))
    return _meta(newest).get("name")


def _is_pvc(info: ResourceInfo) -> bool:
    return info.group == "" and info.plural == "persistentvolumeclaims"


class DefaultStorageClass(Plugin):
    name = "DefaultStorageClass"
    mutates = True

    def __init__(self, lookups: Lookups) -> None:
        self.lookups = lookups

    def handles(self, info: ResourceInfo, subresource: str, operation: str) -> bool:
        return _is_pvc(info) and not subresource and operation == CREATE

    async def admit(self, a: Attributes) -> None:
        if not isinstance(a.obj, dict):
            return
        spec = a.obj.setdefault("spec", {})
        if not isinstance(spec, dict) or spec.get("storageClassName") is not None:
            return
        if (_meta(a.obj).get("annotations") or {}).get(BETA_CLASS_ANNOTATION):
            return
        name = default_storage_class(self.lookups.list_all("storageclasses"))
        if name:
            spec["storageClassName"] = name


class StorageObjectInUseProtection(Plugin):
    name = "StorageObjectInUseProtection"
    mutates = True

    def handles(self, info: ResourceInfo, subresource: str, operation: str) -> bool:
        return info.group == "" and info.plural in ("persistentvolumeclaims", "persistentvolumes") \
            and not subresource and operation == CREATE

    async def admit(self, a: Attributes) -> None:
        if not isinstance(a.obj, dict):
            return
        fin = PVC_PROTECTION if a.info.plural == "persistentvolumeclaims" else PV_PROTECTION
        meta = a.obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            return
        finalizers = meta.get("finalizers") if isinstance(meta.get("finalizers"), list) else []
        if fin not in finalizers:
            meta["finalizers"] = [*finalizers, fin]


def _storage(o: Obj | None) -> Any:
    return (((o or {}).get("spec") or {}).get("resources") or {}).get("requests", {}).get("storage")


class PersistentVolumeClaimResize(Plugin):
    name = "PersistentVolumeClaimResize"
    validates = True

    def __init__(self, lookups: Lookups) -> None:
        self.lookups = lookups

    def handles(self, info: ResourceInfo, subresource: str, operation: str) -> bool:
        return _is_pvc(info) and not subresource and operation == UPDATE

    async def validate(self, a: Attributes) -> None:
        if not isinstance(a.obj, dict) or not isinstance(a.old, dict):
            return
        try:
            grows = parse_quantity(_storage(a.obj)) > parse_quantity(_storage(a.old))
        except (ValueError, TypeError, ZeroDivisionError):
            return  # validation reports the bad quantity
        if not grows or (a.old.get("status") or {}).get("phase") != "Bound":
            return
        name = (a.old.get("spec") or {}).get("storageClassName") or ""
        sc = self.lookups.get("storageclasses", None, name) if name else None
        if not sc or not sc.get("allowVolumeExpansion"):
            raise forbidden(a, "only dynamically provisioned pvc can be resized and the storageclass that "
                               "provisions the pvc must support resize")
