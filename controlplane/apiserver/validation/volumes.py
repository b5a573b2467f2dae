"""A pod's volume sources (``validateVolumeSource`` of Kubernetes 1.32's
``pkg/apis/core/validation``): the everyday kinds (emptyDir, hostPath, secret, configMap,
downwardAPI, projected, persistentVolumeClaim) with Kubernetes' field paths, messages and order.
Called by ``pods.validate_pod_spec`` before each volume's name checks, as upstream does.
"""

from __future__ import annotations

import posixpath
import re
from fractions import Fraction
from typing import Any

from controlplane.apiserver.meta.names import Errors
from controlplane.machinery.quantity import parse_quantity

FILE_MODE_MSG = "must be a number between 0 and 0777 (octal), both inclusive"
HOST_PATH_TYPES = ("", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File", "FileOrCreate", "Socket")
VOLUME_FIELD_PATHS = ("metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace", "metadata.uid")
VOLUME_RESOURCES = ("limits.cpu", "limits.ephemeral-storage", "limits.memory", "requests.cpu",
                    "requests.ephemeral-storage", "requests.memory")
ENV_FIELD_PATHS = ("metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName", "spec.serviceAccountName",
                   "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs")
_CONVERTIBLE = {"metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace", "metadata.uid",
                "spec.nodeName", "spec.restartPolicy", "spec.serviceAccountName", "spec.schedulerName",
                "status.phase", "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs"}
_CPU_DIVISORS = {Fraction(1, 1000), Fraction(1)}
_BYTE_DIVISORS = {parse_quantity(q) for q in ("1", "1k", "1M", "1G", "1T", "1P", "1E",
                                               "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei")}


def validate_volume_source(errs: Errors, path: str, v: dict[str, Any]) -> None:
    """Upstream's order of kinds: emptyDir, hostPath, secret, persistentVolumeClaim,
    downwardAPI, configMap, projected."""
    ed = v.get("emptyDir")
    if isinstance(ed, dict) and ed.get("sizeLimit") is not None:
        try:
            negative = parse_quantity(ed["sizeLimit"]) < 0
        except (ValueError, ZeroDivisionError):
            negative = False  # the decoder refuses a malformed quantity first
        if negative:
            errs.forbidden(f"{path}.emptyDir.sizeLimit", "SizeLimit field must be a valid resource quantity")
    hp = v.get("hostPath")
    if isinstance(hp, dict):
        p = hp.get("path") or ""
        if not p:
            errs.required(f"{path}.hostPath.path", "")
        else:
            _no_backsteps(errs, f"{path}.hostPath.path", p)
        t = hp.get("type")
        if t is not None and t not in HOST_PATH_TYPES:
            errs.not_supported(f"{path}.hostPath.type", t, HOST_PATH_TYPES)
    sec = v.get("secret")
    if isinstance(sec, dict):
        if not sec.get("secretName"):
            errs.required(f"{path}.secret.secretName", "")
        _mode(errs, f"{path}.secret.defaultMode", sec.get("defaultMode"))
        for i, kp in enumerate(sec.get("items") or []):
            _key_to_path(errs, f"{path}.secret.items[{i}]", kp)
    pvc = v.get("persistentVolumeClaim")
    if isinstance(pvc, dict) and not pvc.get("claimName"):
        errs.required(f"{path}.persistentVolumeClaim.claimName", "")
    dapi = v.get("downwardAPI")
    if isinstance(dapi, dict):
        _mode(errs, f"{path}.downwardAPI.defaultMode", dapi.get("defaultMode"))
        for i, f in enumerate(dapi.get("items") or []):
            _downward_file(errs, f"{path}.downwardAPI.items[{i}]", f)
    cm = v.get("configMap")
    if isinstance(cm, dict):
        if not cm.get("name"):
            errs.required(f"{path}.configMap.name", "")
        _mode(errs, f"{path}.configMap.defaultMode", cm.get("defaultMode"))
        for i, kp in enumerate(cm.get("items") or []):
            _key_to_path(errs, f"{path}.configMap.items[{i}]", kp)
    proj = v.get("projected")
    if isinstance(proj, dict):
        _projected(errs, f"{path}.projected", proj)


def _projected(errs: Errors, path: str, proj: dict[str, Any]) -> None:
    """``validateProjectedVolumeSource``: its paths are upstream's, odd ones included (a
    downwardAPI file's errors name ``sources[i].downwardAPI.path``, a token without a path
    ``projected.path``), and the same path twice is a conflict."""
    _mode(errs, f"{path}.defaultMode", proj.get("defaultMode"))
    seen: set[str] = set()

    def dup(p: Any, name: Any) -> None:
        if isinstance(p, str) and p:
            if p in seen:
                errs.invalid(path, name if name is not None else "", "conflicting duplicate paths")
            seen.add(p)

    for i, s in enumerate(proj.get("sources") or []):
        if not isinstance(s, dict):
            continue
        sp = f"{path}.sources[{i}]"
        n = 0
        for kind in ("secret", "configMap"):
            src = s.get(kind)
            if not isinstance(src, dict):
                continue
            n += 1
            if not src.get("name"):
                errs.required(f"{sp}.{kind}.name", "")
            for j, kp in enumerate(src.get("items") or []):
                _key_to_path(errs, f"{sp}.{kind}.items[{j}]", kp)
                if isinstance(kp, dict):
                    dup(kp.get("path"), src.get("name", ""))
        dapi = s.get("downwardAPI")
        if isinstance(dapi, dict):
            n += 1
            for f in dapi.get("items") or []:
                _downward_file(errs, f"{sp}.downwardAPI", f)
                if isinstance(f, dict):
                    dup(f.get("path"), "")
        sat = s.get("serviceAccountToken")
        if isinstance(sat, dict):
            n += 1
            exp = sat.get("expirationSeconds")
            if isinstance(exp, int) and not isinstance(exp, bool):
                if exp < 600:
                    errs.invalid(f"{sp}.serviceAccountToken.expirationSeconds", exp,
                                 "may not specify a duration less than 10 minutes")
                if exp > 1 << 32:
                    errs.invalid(f"{sp}.serviceAccountToken.expirationSeconds", exp,
                                 "may not specify a duration larger than 2^32 seconds")
            if not sat.get("path"):
                errs.required(f"{path}.path", "")
            else:
                dup(sat["path"], "")
        if n > 1:
            errs.forbidden(sp, "may not specify more than 1 volume type per source")


def _mode(errs: Errors, path: str, mode: Any) -> None:
    if isinstance(mode, int) and not isinstance(mode, bool) and not 0 <= mode <= 0o777:
        errs.invalid(path, mode, FILE_MODE_MSG)


def _key_to_path(errs: Errors, path: str, kp: Any) -> None:
    if not isinstance(kp, dict):
        return
    if not kp.get("key"):
        errs.required(f"{path}.key", "")
    p = kp.get("path") or ""
    if not p:
        errs.required(f"{path}.path", "")
    local_non_reserved_path(errs, f"{path}.path", p)
    _mode(errs, f"{path}.mode", kp.get("mode"))


def _downward_file(errs: Errors, path: str, f: Any) -> None:
    """``validateDownwardAPIVolumeFile``."""
    if not isinstance(f, dict):
        return
    p = f.get("path") or ""
    if not p:
        errs.required(f"{path}.path", "")
    local_non_reserved_path(errs, f"{path}.path", p)
    fr, rr = f.get("fieldRef"), f.get("resourceFieldRef")
    if isinstance(fr, dict):
        object_field_selector(errs, f"{path}.fieldRef", fr, VOLUME_FIELD_PATHS)
        if isinstance(rr, dict):
            errs.invalid(path, "resource", "fieldRef and resourceFieldRef can not be specified simultaneously")
    elif isinstance(rr, dict):
        resource_field_selector(errs, f"{path}.resourceFieldRef", rr, volume=True)
    else:
        errs.required(path, "one of fieldRef and resourceFieldRef is required")
    _mode(errs, f"{path}.mode", f.get("mode"))


def object_field_selector(errs: Errors, path: str, fr: dict[str, Any], allowed: tuple[str, ...]) -> None:
    """``validateObjectFieldSelector`` (with ``ConvertDownwardAPIFieldLabel``'s errors)."""
    if not fr.get("apiVersion"):
        errs.required(f"{path}.apiVersion", "")
        return
    fp = fr.get("fieldPath") or ""
    if not fp:
        errs.required(f"{path}.fieldPath", "")
        return
    if fr["apiVersion"] != "v1":
        errs.invalid(f"{path}.fieldPath", fp, f"error converting fieldPath: unsupported pod version: {fr['apiVersion']}")
        return
    m = re.fullmatch(r"([^\[]*)\['(.*)'\]", fp)
    if m:
        if m.group(1) not in ("metadata.annotations", "metadata.labels"):
            errs.invalid(f"{path}.fieldPath", fp,
                         f"error converting fieldPath: field label does not support subscript: {fp}")
        return
    if fp == "spec.host":
        fp = "spec.nodeName"
    if fp not in _CONVERTIBLE:
        errs.invalid(f"{path}.fieldPath", fp, f"error converting fieldPath: field label not supported: {fp}")
    elif fp not in allowed:
        errs.not_supported(f"{path}.fieldPath", fp, allowed)


def resource_field_selector(errs: Errors, path: str, rr: dict[str, Any], volume: bool) -> None:
    """``validateContainerResourceFieldSelector``: a volume's file must name its container."""
    res = rr.get("resource") or ""
    if volume and not rr.get("containerName"):
        errs.required(f"{path}.containerName", "")
    elif not res:
        errs.required(f"{path}.resource", "")
    elif res not in VOLUME_RESOURCES and not res.startswith(("limits.hugepages-", "requests.hugepages-")):
        errs.not_supported(f"{path}.resource", res, VOLUME_RESOURCES)
    divisor_error(errs, path, res, rr.get("divisor"))


def resource_field_refs(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Every ``resourceFieldRef`` of a pod spec: the env of every kind of container, then the
    downwardAPI volume files and the projected downwardAPI sources."""
    out: list[dict[str, Any]] = []

    def add(ref: Any) -> None:
        if isinstance(ref, dict):
            out.append(ref)

    for key in ("initContainers", "containers", "ephemeralContainers"):
        for c in spec.get(key) if isinstance(spec.get(key), list) else []:
            env = c.get("env") if isinstance(c, dict) else None
            for e in env if isinstance(env, list) else []:
                if isinstance(e, dict) and isinstance(e.get("valueFrom"), dict):
                    add(e["valueFrom"].get("resourceFieldRef"))
    for v in spec.get("volumes") if isinstance(spec.get("volumes"), list) else []:
        if not isinstance(v, dict):
            continue
        projected = v.get("projected")
        sources = (projected.get("sources") or []) if isinstance(projected, dict) else []
        for src in [v, *(sources if isinstance(sources, list) else [])]:
            dapi = src.get("downwardAPI") if isinstance(src, dict) else None
            items = dapi.get("items") if isinstance(dapi, dict) else None
            for it in items if isinstance(items, list) else []:
                if isinstance(it, dict):
                    add(it.get("resourceFieldRef"))
    return out


def zero_divisors(spec: dict[str, Any]) -> None:
    """A ``divisor`` that is unset or zero reads back as kube-apiserver prints the zero
    ``resource.Quantity`` (a struct: ``omitempty`` keeps it): ``"0"``. In place; any other
    value is left as sent (a malformed one for the decoder to refuse)."""
    for ref in resource_field_refs(spec):
        d = ref.get("divisor")
        if d is None:
            ref["divisor"] = "0"
            continue
        if isinstance(d, bool) or not isinstance(d, (str, int, float)):
            continue
        try:
            zero = parse_quantity(d) == 0
        except (ValueError, ZeroDivisionError):
            continue
        if zero:
            ref["divisor"] = "0"


def divisor_error(errs: Errors, path: str, resource: str, divisor: Any) -> None:
    """``validateContainerResourceDivisor`` (unset or zero passes; the invalid value shown is
    the resource's name, as upstream's)."""
    if divisor is None:
        return
    try:
        d = parse_quantity(divisor)
    except (ValueError, ZeroDivisionError):
        return
    if d == 0:
        return
    if resource in ("limits.cpu", "requests.cpu"):
        if d not in _CPU_DIVISORS:
            errs.invalid(f"{path}.divisor", resource, "only divisor's values 1m and 1 are supported with the cpu resource")
    elif resource in ("limits.memory", "requests.memory"):
        if d not in _BYTE_DIVISORS:
            errs.invalid(f"{path}.divisor", resource, "only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, "
                         "1Gi, 1Ti, 1Pi, 1Ei are supported with the memory resource")
    elif resource in ("limits.ephemeral-storage", "requests.ephemeral-storage"):
        if d not in _BYTE_DIVISORS:
            errs.invalid(f"{path}.divisor", resource, "only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, "
                         "1Gi, 1Ti, 1Pi, 1Ei are supported with the local ephemeral storage resource")


def _no_backsteps(errs: Errors, path: str, target: str) -> None:
    if ".." in target.split("/"):
        errs.invalid(path, target, "must not contain '..'")


def local_non_reserved_path(errs: Errors, path: str, target: str) -> None:
    """``ValidateLocalNonReservedPath``: relative, no ``..`` element, not starting ``..``."""
    if posixpath.isabs(target):
        errs.invalid(path, target, "must be a relative path")
    _no_backsteps(errs, path, target)
    if target.startswith("..") and not target.startswith("../"):
        errs.invalid(path, target, "must not start with '..'")
