"""Validation of the storage kinds (Kubernetes 1.32 ``ValidatePersistentVolume``,
``ValidatePersistentVolumeClaim`` and their ``...Update``, ``storage/validation.
ValidateStorageClass``/``ValidateStorageClassUpdate``) with Kubernetes' field paths and
messages: access modes, the storage quantity, exactly one supported volume source
(``hostPath``, ``local`` with its required node affinity), claims immutable once created
except the storage request of a bound claim (whether the class lets it grow is the
PersistentVolumeClaimResize admission's question), StorageClass fields that never change.
``rules.py`` maps the kinds to these functions.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from controlplane.apiserver.meta.names import Errors, dns1123_subdomain_error, qualified_name_error
from controlplane.machinery.quantity import parse_quantity
from controlplane.machinery.selectors import LabelSelector

Obj = dict[str, Any]

ACCESS_MODES = ("ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod")
PV_RECLAIM = ("Delete", "Recycle", "Retain")
SC_RECLAIM = ("Delete", "Retain")
VOLUME_MODES = ("Block", "Filesystem")
BINDING_MODES = ("Immediate", "WaitForFirstConsumer")
HOSTPATH_TYPES = ("", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File", "FileOrCreate", "Socket")
# every PersistentVolumeSource Kubernetes knows; only the first two are served by this cluster
SUPPORTED_SOURCES = ("hostPath", "local")
OTHER_SOURCES = ("gcePersistentDisk", "awsElasticBlockStore", "glusterfs", "nfs", "rbd", "iscsi", "cinder", "cephfs",
                 "fc", "flocker", "flexVolume", "azureFile", "vsphereVolume", "quobyte", "azureDisk",
                 "photonPersistentDisk", "portworxVolume", "scaleIO", "storageos", "csi")
QUANTITY_MSG = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"


def _spec(obj: Obj) -> Obj:
    return obj.get("spec") if isinstance(obj.get("spec"), dict) else {}


def positive_quantity(errs: Errors, path: str, value: Any) -> Fraction | None:
    """``ValidateResourceQuantityValue`` + ``ValidatePositiveQuantityValue``."""
    try:
        q = parse_quantity(value)
    except (ValueError, TypeError, ZeroDivisionError):
        errs.invalid(path, value, QUANTITY_MSG)
        return None
    if q < 0:
        errs.invalid(path, value, "must be greater than or equal to 0")
        return None
    if q == 0:
        errs.invalid(path, value, "must be greater than zero")
        return None
    return q


def _access_modes(errs: Errors, path: str, modes: Any, required_msg: str) -> None:
    modes = modes if isinstance(modes, list) else []
    if not modes:
        errs.required(path, required_msg)
    for m in modes:
        if m not in ACCESS_MODES:
            errs.not_supported(path, m, ACCESS_MODES)
    if "ReadWriteOncePod" in modes and len(modes) > 1:
        errs.forbidden(path, "may not use ReadWriteOncePod with other access modes")


def _class_name(errs: Errors, path: str, name: Any) -> None:
    if name:
        msg = dns1123_subdomain_error(name)
        if msg:
            errs.invalid(path, name, msg)


def _volume_mode(errs: Errors, path: str, mode: Any) -> None:
    if mode is not None and mode not in VOLUME_MODES:
        errs.not_supported(path, mode, VOLUME_MODES)


def _selector(errs: Errors, path: str, sel: Any) -> None:
    if sel is None:
        return
    try:
        LabelSelector.from_dict(sel)
    except ValueError as e:
        errs.invalid(path, sel, str(e))


def _node_affinity(errs: Errors, path: str, aff: Any) -> bool:
    """``validateVolumeNodeAffinity``: True when a required selector is there."""
    if not isinstance(aff, dict):
        return False
    req = aff.get("required")
    if not isinstance(req, dict):
        errs.required(f"{path}.required", "must specify required node constraints")
        return False
    terms = req.get("nodeSelectorTerms")
    if not isinstance(terms, list) or not terms:
        errs.required(f"{path}.required.nodeSelectorTerms", "must have at least one node selector term")
        return False
    for i, t in enumerate(terms):
        for j, e in enumerate((t or {}).get("matchExpressions") or [] if isinstance(t, dict) else []):
            ep = f"{path}.required.nodeSelectorTerms[{i}].matchExpressions[{j}]"
            op = e.get("operator") if isinstance(e, dict) else None
            if not isinstance(e, dict) or not e.get("key"):
                errs.required(f"{ep}.key", "")
            if op not in ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"):
                errs.not_supported(f"{ep}.operator", op, ("DoesNotExist", "Exists", "Gt", "In", "Lt", "NotIn"))
            elif op in ("In", "NotIn") and not (e.get("values") or []):
                errs.required(f"{ep}.values", "must be specified when `operator` is 'In' or 'NotIn'")
    return True


def _host_path(errs: Errors, path: str, hp: Obj) -> None:
    p = hp.get("path")
    if not p:
        errs.required(f"{path}.path", "")
    elif ".." in str(p).split("/"):
        errs.invalid(f"{path}.path", p, "must not contain '..'")
    t = hp.get("type")
    if t is not None and t not in HOSTPATH_TYPES:
        errs.not_supported(f"{path}.type", t, HOSTPATH_TYPES)


def persistent_volume(obj: Obj, errs: Errors, update: bool, old: Obj) -> None:
    spec = _spec(obj)
    _access_modes(errs, "spec.accessModes", spec.get("accessModes"), "")
    cap = spec.get("capacity") if isinstance(spec.get("capacity"), dict) else {}
    if not cap:
        errs.required("spec.capacity", "")
    if "storage" not in cap or len(cap) > 1:
        errs.not_supported("spec.capacity", "map[" + " ".join(f"{k}:{v}" for k, v in cap.items()) + "]",
                           ("storage",))
    for k, v in cap.items():
        positive_quantity(errs, f"spec.capacity[{k}]", v)
    rp = spec.get("persistentVolumeReclaimPolicy")
    if rp is not None and rp not in PV_RECLAIM:
        errs.not_supported("spec.persistentVolumeReclaimPolicy", rp, PV_RECLAIM)
    _class_name(errs, "spec.storageClassName", spec.get("storageClassName"))
    _volume_mode(errs, "spec.volumeMode", spec.get("volumeMode"))
    has_affinity = _node_affinity(errs, "spec.nodeAffinity", spec.get("nodeAffinity"))
    sources = [s for s in SUPPORTED_SOURCES + OTHER_SOURCES if spec.get(s) is not None]
    if not sources:
        errs.required("spec", "must specify a volume type")
    for s in sources[1:]:
        errs.forbidden(f"spec.{s}", "may not specify more than 1 volume type")
    if sources and sources[0] not in SUPPORTED_SOURCES:
        errs.not_supported(f"spec.{sources[0]}", sources[0], SUPPORTED_SOURCES)
    if isinstance(spec.get("hostPath"), dict):
        _host_path(errs, "spec.hostPath", spec["hostPath"])
    local = spec.get("local")
    if isinstance(local, dict):
        lp = local.get("path")
        if not lp:
            errs.required("spec.local.path", "")
        elif ".." in str(lp).split("/"):
            errs.invalid("spec.local.path", lp, "must not contain '..'")
        if not has_affinity and spec.get("nodeAffinity") is None:
            errs.required("spec.nodeAffinity", "Local volume requires node affinity")
    if update and old:
        ospec = _spec(old)
        if any(ospec.get(s) != spec.get(s) for s in SUPPORTED_SOURCES + OTHER_SOURCES):
            errs.forbidden("spec.persistentvolumesource", "spec.persistentvolumesource is immutable after creation")
        if ospec.get("volumeMode") != spec.get("volumeMode"):
            errs.invalid("volumeMode", spec.get("volumeMode"), "field is immutable")
        if ospec.get("nodeAffinity") is not None and ospec.get("nodeAffinity") != spec.get("nodeAffinity"):
            errs.invalid("spec.nodeAffinity", spec.get("nodeAffinity"), "field is immutable")


IMMUTABLE_CLAIM = "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"


def claim_spec(errs: Errors, path: str, spec: Obj) -> None:
    """``ValidatePersistentVolumeClaimSpec`` (also for StatefulSet ``volumeClaimTemplates``)."""
    _access_modes(errs, f"{path}.accessModes", spec.get("accessModes"), "at least 1 access mode is required")
    _selector(errs, f"{path}.selector", spec.get("selector"))
    res = spec.get("resources") if isinstance(spec.get("resources"), dict) else {}
    req = res.get("requests") if isinstance(res.get("requests"), dict) else {}
    if "storage" not in req:
        errs.required(f"{path}.resources[storage]", "")
    else:
        positive_quantity(errs, f"{path}.resources[storage]", req["storage"])
    _class_name(errs, f"{path}.storageClassName", spec.get("storageClassName"))
    _volume_mode(errs, f"{path}.volumeMode", spec.get("volumeMode"))


def persistent_volume_claim(obj: Obj, errs: Errors, update: bool, old: Obj) -> None:
    spec = _spec(obj)
    claim_spec(errs, "spec", spec)
    if not (update and old):
        return
    ospec, nspec = dict(_spec(old)), dict(spec)
    if not ospec.get("volumeName"):
        ospec["volumeName"] = nspec.get("volumeName")       # binding sets it once
    if ospec.get("storageClassName") is None and not _spec(old).get("volumeName"):
        ospec["storageClassName"] = nspec.get("storageClassName")   # retroactive default class
    ospec.pop("volumeAttributesClassName", None)
    nspec.pop("volumeAttributesClassName", None)
    bound = (old.get("status") or {}).get("phase") == "Bound"
    if bound:
        o_res, n_res = dict(ospec.get("resources") or {}), dict(nspec.get("resources") or {})
        o_req, n_req = dict(o_res.get("requests") or {}), dict(n_res.get("requests") or {})
        o_size, n_size = o_req.get("storage"), n_req.get("storage")
        o_req.pop("storage", None)
        n_req.pop("storage", None)
        o_res["requests"], n_res["requests"] = o_req, n_req
        ospec["resources"], nspec["resources"] = o_res, n_res
        try:
            if n_size is not None and o_size is not None and parse_quantity(n_size) < parse_quantity(o_size):
                errs.forbidden("spec.resources.requests.storage", "field can not be less than previous value")
        except (ValueError, TypeError, ZeroDivisionError):
            pass
    ospec = {k: v for k, v in ospec.items() if v is not None}
    nspec = {k: v for k, v in nspec.items() if v is not None}
    if ospec != nspec:
        changed = sorted(k for k in set(ospec) | set(nspec) if ospec.get(k) != nspec.get(k))
        errs.forbidden("spec", IMMUTABLE_CLAIM + "\n  changed: " + ", ".join(changed))


def storage_class(obj: Obj, errs: Errors, update: bool, old: Obj) -> None:
    prov = obj.get("provisioner")
    if not prov:
        errs.required("provisioner", "")
    elif len(prov) > 253:
        errs.add("FieldValueTooLong", "provisioner", "Too long: may not be more than 253 bytes")
    elif (msg := qualified_name_error(str(prov).lower())) is not None:
        errs.invalid("provisioner", prov, msg)
    params = obj.get("parameters")
    if isinstance(params, dict):
        if len(params) > 512:
            errs.invalid("parameters", params, "must have at most 512 parameters")
        for k in params:
            if not k:
                errs.invalid("parameters", k, "key cannot be empty")
    rp = obj.get("reclaimPolicy")
    if rp is not None and rp not in SC_RECLAIM:
        errs.not_supported("reclaimPolicy", rp, SC_RECLAIM)
    bm = obj.get("volumeBindingMode")
    if bm is None:
        errs.required("volumeBindingMode", "")
    elif bm not in BINDING_MODES:
        errs.not_supported("volumeBindingMode", bm, BINDING_MODES)
    if not (update and old):
        return
    if (old.get("parameters") or {}) != (obj.get("parameters") or {}):
        errs.forbidden("parameters", "updates to parameters are forbidden.")
    if old.get("provisioner") != prov:
        errs.forbidden("provisioner", "updates to provisioner are forbidden.")
    if old.get("reclaimPolicy") != rp:
        errs.forbidden("reclaimPolicy", "updates to reclaimPolicy are forbidden.")
    if old.get("volumeBindingMode") != bm:
        errs.invalid("volumeBindingMode", bm, "field is immutable")
