"""Validation of the storage.k8s.io/v1 CSI kinds, as Kubernetes 1.32's
``pkg/apis/storage/validation`` words it: ``ValidateCSIDriver``/``...Update`` (a driver name of
at most 63 characters; ``attachRequired`` and ``volumeLifecycleModes`` immutable, while
``podInfoOnMount``, ``fsGroupPolicy``, ``storageCapacity``, ``tokenRequests`` and
``requiresRepublish`` may change since 1.29 / 1.22 / 1.21), ``ValidateCSINode``/``...Update``
(unique driver names, a nodeID of at most 256 characters, topology keys that are qualified
names, an existing driver entry never changes), ``ValidateVolumeAttachment``/``...V1``/
``...Update`` (an attacher, exactly one of ``persistentVolumeName``/``inlineVolumeSpec``, a
node name; the spec never changes; bounded status metadata and error messages) and
``ValidateCSIStorageCapacity``/``...Update`` (a StorageClass name, a non-negative capacity;
``nodeTopology`` and ``storageClassName`` immutable). ``rules.py`` maps the kinds here;
``storage.py`` holds the PersistentVolume ones (an inline volume spec reuses its checks).
"""

from __future__ import annotations

import json
from typing import Any

from controlplane.apiserver.meta.names import Errors, GoValue, dns1123_subdomain_error, qualified_name_error
from controlplane.apiserver.validation import storage
from controlplane.machinery.quantity import parse_quantity
from controlplane.machinery.selectors import LabelSelector

Obj = dict[str, Any]

FS_GROUP_POLICIES = ("File", "None", "ReadWriteOnceWithFSType")
LIFECYCLE_MODES = ("Persistent", "Ephemeral")
CSI_NODE_ID_MAX = 256          # csiNodeIDLongerMaxLength (AllowLongNodeID, always on since 1.25)
MAX_ATTACH_METADATA = 256 * (1 << 10)
MAX_VOLUME_ERROR_MESSAGE = 1024
ONE_SOURCE = "must specify exactly one of inlineVolumeSpec and persistentVolumeName"


def _d(obj: Obj, key: str) -> Obj:
    v = obj.get(key)
    return v if isinstance(v, dict) else {}


def driver_name(errs: Errors, path: str, name: Any) -> None:
    """``ValidateCSIDriverName``: required, at most 63 characters, a DNS subdomain (lower-cased)."""
    name = name if isinstance(name, str) else ""
    if not name:
        errs.required(path, "")
    if len(name) > 63:
        errs.add("FieldValueTooLong", path, "Too long: may not be more than 63 bytes")
    msg = dns1123_subdomain_error(name.lower())
    if msg:
        errs.invalid(path, name, msg)


def _token_requests(errs: Errors, path: str, requests: Any) -> None:
    seen: set[str] = set()
    for i, tr in enumerate(requests if isinstance(requests, list) else []):
        tr = tr if isinstance(tr, dict) else {}
        audience = tr.get("audience", "")
        if audience in seen:
            errs.duplicate(f"{path}[{i}].audience", audience)
            continue
        seen.add(audience)
        secs = tr.get("expirationSeconds")
        if not isinstance(secs, int):
            continue
        if secs < 10 * 60:
            errs.invalid(f"{path}[{i}].expirationSeconds", secs, "may not specify a duration less than 10 minutes")
        if secs > 1 << 32:
            errs.invalid(f"{path}[{i}].expirationSeconds", secs, "may not specify a duration larger than 2^32 seconds")


def _driver_spec(errs: Errors, spec: Obj) -> None:
    # (attachRequired, podInfoOnMount, storageCapacity, fsGroupPolicy are never unset here:
    # SetDefaults_CSIDriver fills them, so Go's Required checks cannot fire)
    policy = spec.get("fsGroupPolicy")
    if policy is not None and policy not in FS_GROUP_POLICIES:
        errs.not_supported("spec.fsGroupPolicy", policy, FS_GROUP_POLICIES)
    _token_requests(errs, "spec.tokenRequests", spec.get("tokenRequests"))
    for mode in spec.get("volumeLifecycleModes") or []:
        if mode not in LIFECYCLE_MODES:
            errs.not_supported("spec.volumeLifecycleModes", mode, LIFECYCLE_MODES)


def csi_driver(obj: Obj, errs: Errors, update: bool, old: Obj) -> None:
    if not update:
        driver_name(errs, "name", (obj.get("metadata") or {}).get("name"))
    spec = _d(obj, "spec")
    _driver_spec(errs, spec)
    if not (update and old):
        return
    ospec = _d(old, "spec")
    # the Go path is "attachedRequired" (sic), as Kubernetes reports it
    if spec.get("attachRequired") != ospec.get("attachRequired"):
        errs.invalid("spec.attachedRequired", spec.get("attachRequired"), "field is immutable")
    modes = spec.get("volumeLifecycleModes")
    if modes != ospec.get("volumeLifecycleModes"):
        errs.invalid("spec.volumeLifecycleModes", _go_modes(modes), "field is immutable")


def _go_modes(modes: Any) -> GoValue:
    """A ``[]storage.VolumeLifecycleMode`` as Go's ``%#v`` prints it."""
    if not isinstance(modes, list):
        return GoValue("[]storage.VolumeLifecycleMode(nil)")
    return GoValue("[]storage.VolumeLifecycleMode{" + ", ".join(json.dumps(m) for m in modes) + "}")


def _topology_keys(errs: Errors, path: str, keys: Any) -> None:
    seen: set[str] = set()
    for key in keys if isinstance(keys, list) else []:
        if not key:
            errs.required(path, "")
        if key in seen:
            errs.duplicate(path, key)
        seen.add(key)
        msg = qualified_name_error(key)
        if msg:
            errs.invalid(path, key, msg)


def csi_node(obj: Obj, errs: Errors, update: bool, old: Obj) -> None:
    names: set[str] = set()
    drivers = _d(obj, "spec").get("drivers")
    for i, drv in enumerate(drivers if isinstance(drivers, list) else []):
        drv = drv if isinstance(drv, dict) else {}
        path = f"spec.drivers[{i}]"
        name = drv.get("name", "")
        driver_name(errs, f"{path}.name", name)
        node_id = drv.get("nodeID") or ""
        if not node_id:
            errs.required(f"{path}.nodeID", "")
        if len(node_id) > CSI_NODE_ID_MAX:
            errs.invalid(f"{path}.nodeID", node_id, f"must be {CSI_NODE_ID_MAX} characters or less")
        count = _d(drv, "allocatable").get("count")
        if isinstance(count, int) and count < 0:
            errs.invalid(f"{path}.allocatable.count", count, "must be greater than or equal to 0")
        if name in names:
            errs.duplicate(f"{path}.name", name)
        _topology_keys(errs, path, drv.get("topologyKeys"))
        names.add(name)
    if not (update and old):
        return
    old_drivers = {d.get("name"): d for d in _d(old, "spec").get("drivers") or [] if isinstance(d, dict)}
    for drv in drivers if isinstance(drivers, list) else []:
        before = old_drivers.get(drv.get("name")) if isinstance(drv, dict) else None
        if before is not None and before != drv:
            errs.invalid("CSINodeDriver", drv, "field is immutable")


def _attachment_source(errs: Errors, source: Obj) -> None:
    pv, inline = source.get("persistentVolumeName"), source.get("inlineVolumeSpec")
    if pv is None and inline is None:
        errs.required("spec.source", ONE_SOURCE)
    elif pv is not None and inline is not None:
        errs.forbidden("spec.source", ONE_SOURCE)
    elif pv is not None:
        if not pv:
            errs.required("spec.source.persistentVolumeName", "must specify non empty persistentVolumeName")
        elif (msg := dns1123_subdomain_error(pv)) is not None:
            errs.invalid("spec.source.persistentVolumeName", pv, msg)
    elif isinstance(inline, dict):
        sub = Errors()
        storage.persistent_volume({"spec": inline}, sub, False, {})
        for c in sub.causes:
            field = c["field"]
            c["field"] = "spec.source.inlineVolumeSpec" + field[len("spec"):] if field.startswith("spec") else field
            errs.causes.append(c)


def _volume_error(errs: Errors, path: str, e: Any) -> None:
    if isinstance(e, dict) and len(e.get("message") or "") > MAX_VOLUME_ERROR_MESSAGE:
        errs.add("FieldValueTooLong", f"{path}.message",
                 f"Too long: may not be more than {MAX_ATTACH_METADATA} bytes")  # (sic: Go passes this bound)


def volume_attachment(obj: Obj, errs: Errors, update: bool, old: Obj) -> None:
    spec = _d(obj, "spec")
    attacher = spec.get("attacher") or ""
    if not attacher:
        errs.required("spec.attacher", "")
    _attachment_source(errs, _d(spec, "source"))
    node = spec.get("nodeName") or ""
    if (msg := dns1123_subdomain_error(node)) is not None:
        errs.invalid("spec.nodeName", node, msg)
    status = _d(obj, "status")
    meta = status.get("attachmentMetadata")
    if isinstance(meta, dict) and sum(len(k) + len(v or "") for k, v in meta.items()) > MAX_ATTACH_METADATA:
        errs.add("FieldValueTooLong", "status.attachmentMetadata",
                 f"Too long: may not be more than {MAX_ATTACH_METADATA} bytes")
    _volume_error(errs, "status.attachError", status.get("attachError"))
    _volume_error(errs, "status.detachError", status.get("detachError"))
    if update and old:
        if spec != _d(old, "spec"):
            errs.invalid("spec", spec, "field is immutable")
        return
    # ValidateVolumeAttachmentV1 (create): the attacher is a CSI driver name
    if attacher:
        driver_name(errs, "spec.attacher", attacher)


def csi_storage_capacity(obj: Obj, errs: Errors, update: bool, old: Obj) -> None:
    topology = obj.get("nodeTopology")
    if topology is not None:
        try:
            LabelSelector.from_dict(topology)
        except ValueError as e:
            errs.invalid("nodeTopology", topology, str(e))
    cls = obj.get("storageClassName") or ""
    if (msg := dns1123_subdomain_error(cls)) is not None:
        errs.invalid("storageClassName", cls, msg)
    cap = obj.get("capacity")
    if cap is not None:
        try:
            if parse_quantity(cap) < 0:
                errs.invalid("capacity", cap, "must be greater than or equal to 0")
        except (ValueError, TypeError, ZeroDivisionError):
            errs.invalid("capacity", cap, storage.QUANTITY_MSG)
    if update and old:
        if topology != old.get("nodeTopology"):
            errs.invalid("nodeTopology", topology, "field is immutable")
        if cls != (old.get("storageClassName") or ""):
            errs.invalid("storageClassName", cls, "field is immutable")
