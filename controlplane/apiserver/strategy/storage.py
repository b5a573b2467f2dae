"""Strategies of the storage kinds (kube-apiserver's ``pkg/registry/core/persistentvolume``,
``.../persistentvolumeclaim`` and ``pkg/registry/storage/storageclass``, ``csidriver``,
``volumeattachment``): the defaults of ``SetDefaults_PersistentVolume`` /
``_PersistentVolumeClaim`` / ``_StorageClass`` / ``_CSIDriver`` and the ``Pending`` phase new
volumes and claims start in (their status is then written by the persistentvolume-binder
through ``/status``); a VolumeAttachment starts ``attached: false`` (its status belongs to the
attacher, through ``/status``). CSINode and CSIStorageCapacity follow the generic rules.
Validation: ``validation/storage.py``, ``validation/csi.py``.
"""

from __future__ import annotations

from typing import Any

from controlplane.apiserver.discovery.registry import ResourceInfo
from controlplane.apiserver.strategy.base import Strategy

Obj = dict[str, Any]


def _spec(obj: Obj) -> Obj:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        spec = obj["spec"] = {}
    return spec


class PersistentVolumeStrategy(Strategy):
    def set_defaults(self, obj: Obj) -> None:
        spec = _spec(obj)
        spec.setdefault("persistentVolumeReclaimPolicy", "Retain")
        spec.setdefault("volumeMode", "Filesystem")

    def prepare_for_create(self, info: ResourceInfo, obj: Obj) -> None:
        obj["status"] = {"phase": "Pending"}


class PersistentVolumeClaimStrategy(Strategy):
    def set_defaults(self, obj: Obj) -> None:
        _spec(obj).setdefault("volumeMode", "Filesystem")

    def prepare_for_create(self, info: ResourceInfo, obj: Obj) -> None:
        obj["status"] = {"phase": "Pending"}


class StorageClassStrategy(Strategy):
    def set_defaults(self, obj: Obj) -> None:
        obj.setdefault("reclaimPolicy", "Delete")
        obj.setdefault("volumeBindingMode", "Immediate")


class CSIDriverStrategy(Strategy):
    """``SetDefaults_CSIDriver`` of 1.32 (CSIInlineVolume GA, SELinuxMountReadWriteOncePod
    beta and on): attach required, no pod info on mount, no storage capacity, the
    ``ReadWriteOnceWithFSType`` fsGroup policy, ``Persistent`` volumes, no republish, no
    SELinux mount. Any change of a mutable field that reaches the driver (token requests,
    republish, SELinux mount) bumps ``metadata.generation``, as ``PrepareForUpdate``."""

    _DEFAULTS = (("attachRequired", True), ("podInfoOnMount", False), ("storageCapacity", False),
                 ("fsGroupPolicy", "ReadWriteOnceWithFSType"), ("requiresRepublish", False),
                 ("seLinuxMount", False))

    def set_defaults(self, obj: Obj) -> None:
        spec = _spec(obj)
        for key, value in self._DEFAULTS:
            if spec.get(key) is None:
                spec[key] = value
        if not spec.get("volumeLifecycleModes"):
            spec["volumeLifecycleModes"] = ["Persistent"]

    def prepare_for_update(self, info: ResourceInfo, old: Obj, new: Obj) -> None:
        o, n = self.default(old).get("spec") or {}, self.default(new).get("spec") or {}
        if any(o.get(k) != n.get(k) for k in ("tokenRequests", "requiresRepublish", "seLinuxMount")):
            meta = new.setdefault("metadata", {})
            meta["generation"] = int((old.get("metadata") or {}).get("generation") or 0) + 1


class VolumeAttachmentStrategy(Strategy):
    def set_defaults(self, obj: Obj) -> None:
        if isinstance(obj.get("status"), dict):
            obj["status"].setdefault("attached", False)   # a non-omitempty bool in Go

    def prepare_for_create(self, info: ResourceInfo, obj: Obj) -> None:
        obj["status"] = {"attached": False}
