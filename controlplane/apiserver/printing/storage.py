"""Table rows of the storage kinds, ported from Kubernetes' ``printPersistentVolume``,
``printPersistentVolumeClaim``, ``printStorageClass`` and the CSI kinds' printers
(``pkg/printers/internalversion``):
access modes as ``RWO,ROX,RWX,RWOP``, the claim as ``namespace/name``, ``Terminating`` for a
deleted volume or claim, ``(default)`` after the default StorageClass's name. Registered in
``printers.py``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from controlplane.apiserver.printing.format import meta as _m
from controlplane.apiserver.printing.format import since
from controlplane.apiserver.printing.format import sub as _s

Obj = dict[str, Any]

_MODES = (("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"), ("ReadWriteOncePod", "RWOP"))
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"


def access_modes(modes: Any) -> str:
    """``GetAccessModesAsString``: the short forms in Kubernetes' fixed order."""
    modes = modes if isinstance(modes, list) else []
    return ",".join(short for long, short in _MODES if long in modes)


def _class(o: Obj) -> str:
    return _s(o).get("storageClassName") or \
        (_m(o).get("annotations") or {}).get("volume.beta.kubernetes.io/storage-class", "")


def pv_row(o: Obj, now: datetime) -> list[Any]:
    spec, meta = _s(o), _m(o)
    ref = spec.get("claimRef") if isinstance(spec.get("claimRef"), dict) else None
    claim = f"{ref.get('namespace', '')}/{ref.get('name', '')}" if ref else ""
    phase = "Terminating" if meta.get("deletionTimestamp") else _s(o, "status").get("phase", "")
    return [meta.get("name", ""), str((spec.get("capacity") or {}).get("storage", "")),
            access_modes(spec.get("accessModes")), spec.get("persistentVolumeReclaimPolicy", ""), phase, claim,
            _class(o), spec.get("volumeAttributesClassName") or "<unset>", _s(o, "status").get("reason", ""),
            since(meta.get("creationTimestamp"), now), spec.get("volumeMode") or "<unset>"]


def pvc_row(o: Obj, now: datetime) -> list[Any]:
    spec, st, meta = _s(o), _s(o, "status"), _m(o)
    phase = "Terminating" if meta.get("deletionTimestamp") else st.get("phase", "")
    volume = spec.get("volumeName", "")
    cap = modes = ""
    if volume:
        modes = access_modes(st.get("accessModes"))
        cap = str((st.get("capacity") or {}).get("storage", ""))
    return [meta.get("name", ""), phase, volume, cap, modes, _class(o),
            spec.get("volumeAttributesClassName") or "<unset>", since(meta.get("creationTimestamp"), now),
            spec.get("volumeMode") or "<unset>"]


def is_default_class(o: Obj) -> bool:
    ann = _m(o).get("annotations") or {}
    return ann.get(DEFAULT_CLASS_ANNOTATION) == "true" or \
        ann.get("storageclass.beta.kubernetes.io/is-default-class") == "true"


def storageclass_row(o: Obj, now: datetime) -> list[Any]:
    name = _m(o).get("name", "")
    if is_default_class(o):
        name += " (default)"
    return [name, o.get("provisioner", ""), o.get("reclaimPolicy") or "Delete",
            o.get("volumeBindingMode") or "Immediate", "true" if o.get("allowVolumeExpansion") else "false",
            since(_m(o).get("creationTimestamp"), now)]


# ---- storage.k8s.io/v1 CSI kinds (printCSIDriver, printCSINode, printVolumeAttachment,
# printCSIStorageCapacity)

def csidriver_row(o: Obj, now: datetime) -> list[Any]:
    """Unset booleans read as their defaults; ``<unset>`` token requests, ``<none>`` modes."""
    spec = _s(o)
    attach = spec.get("attachRequired")
    requests = spec.get("tokenRequests")
    tokens = "<unset>" if requests is None else ",".join(
        str(t.get("audience", "")) for t in requests if isinstance(t, dict))
    modes = ",".join(str(m) for m in spec.get("volumeLifecycleModes") or []) or "<none>"
    return [_m(o).get("name", ""), True if attach is None else bool(attach), bool(spec.get("podInfoOnMount")),
            bool(spec.get("storageCapacity")), tokens, bool(spec.get("requiresRepublish")), modes,
            since(_m(o).get("creationTimestamp"), now)]


def csinode_row(o: Obj, now: datetime) -> list[Any]:
    return [_m(o).get("name", ""), len(_s(o).get("drivers") or []), since(_m(o).get("creationTimestamp"), now)]


def volumeattachment_row(o: Obj, now: datetime) -> list[Any]:
    spec = _s(o)
    return [_m(o).get("name", ""), spec.get("attacher", ""), _s(spec, "source").get("persistentVolumeName") or "",
            spec.get("nodeName", ""), bool(_s(o, "status").get("attached")), since(_m(o).get("creationTimestamp"), now)]


def csistoragecapacity_row(o: Obj, now: datetime) -> list[Any]:
    cap = o.get("capacity")
    return [_m(o).get("name", ""), o.get("storageClassName", ""), "<unset>" if cap is None else str(cap)]
