"""Strategies of the storage kinds (kube-apiserver's ``pkg/registry/core/persistentvolume``,
``.../persistentvolumeclaim`` and ``pkg/registry/storage/storageclass``): the defaults of
``SetDefaults_PersistentVolume`` / ``_PersistentVolumeClaim`` / ``_StorageClass`` and the
``Pending`` phase new volumes and claims start in (their status is then written by the
persistentvolume-binder through ``/status``). Validation: ``validation/storage.py``.
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
