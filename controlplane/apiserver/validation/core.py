"""Validation rules of the core/v1 kinds (``pkg/apis/core/validation`` of Kubernetes 1.32):
Service, ConfigMap, Secret, Pod (the pod spec itself in ``pods.py``), ReplicationController,
Namespace, Lease, Event.
Each rule appends Kubernetes' field errors to an ``Errors``; ``rules.py`` maps kinds to them.
"""

from __future__ import annotations

import json
import re
from typing import Any

from controlplane.apiserver.meta.names import Errors, dns1123_label_error, qualified_name_error, validate_labels
from controlplane.apiserver.validation import pods
from controlplane.apiserver.validation.podtemplate import go_map, immutable, nonneg, spec_of

Obj = dict[str, Any]

_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


def service(obj: Obj, errs: Errors, update: bool, old: Obj) -> None:
    spec = spec_of(obj)
    stype = spec.get("type", "ClusterIP")
    types = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
    if stype not in types:
        errs.not_supported("spec.type", stype, types)
    ports = spec.get("ports") or []
    headless = spec.get("clusterIP") == "None"
    if not ports and stype != "ExternalName" and not headless:
        errs.required("spec.ports", "")
    names: set[str] = set()
    for i, p in enumerate(ports):
        if not isinstance(p, dict):
            continue
        path = f"spec.ports[{i}]"
        pname = p.get("name")
        if len(ports) > 1 and not pname:
            errs.required(f"{path}.name", "")
        elif pname:
            if pname in names:
                errs.duplicate(f"{path}.name", pname)
            names.add(pname)
            msg = dns1123_label_error(pname)
            if msg:
                errs.invalid(f"{path}.name", pname, msg)
        pods.port_number(errs, f"{path}.port", p.get("port"), required=True)
        tp = p.get("targetPort")
        if isinstance(tp, int):
            pods.port_number(errs, f"{path}.targetPort", tp)
        elif isinstance(tp, str) and tp and not pods.iana_svc_name_ok(tp):
            errs.invalid(f"{path}.targetPort", tp, pods.IANA_MSG)
        pods.protocol(errs, f"{path}.protocol", p.get("protocol"))
        if p.get("nodePort") is not None and stype not in ("NodePort", "LoadBalancer"):
            errs.forbidden(f"{path}.nodePort", "may not be used when `type` is 'ClusterIP'")
    if stype == "ExternalName" and not spec.get("externalName"):
        errs.required("spec.externalName", "")
    validate_labels(spec.get("selector"), "spec.selector", errs)
    sa = spec.get("sessionAffinity")
    if sa is not None and sa not in ("ClientIP", "None"):
        errs.not_supported("spec.sessionAffinity", sa, ("ClientIP", "None"))
    if update:
        old_ip = spec_of(old).get("clusterIP")
        new_ip = spec.get("clusterIP")
        if old_ip and new_ip and old_ip != new_ip and stype != "ExternalName":
            errs.invalid("spec.clusterIPs[0]", new_ip, "may not change once set")


def _config_keys(obj: Obj, errs: Errors, fields: tuple[str, ...]) -> None:
    seen: set[str] = set()
    for f in fields:
        data = obj.get(f)
        if not isinstance(data, dict):
            continue
        for k in data:
            if len(k) > 253 or not _CONFIG_KEY.match(k):
                errs.invalid(f"{f}[{k}]", k, "a valid config key must consist of alphanumeric "
                             "characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or "
                             "'key-name', regex used for validation is '[-._a-zA-Z0-9]+')")
            if k in seen:
                errs.invalid(f"{f}[{k}]", k, "duplicate of key present in data")
            seen.add(k)


def _immutable_data(obj: Obj, errs: Errors, update: bool, old: Obj, fields: tuple[str, ...]) -> None:
    if not update or not old.get("immutable"):
        return
    for f in fields:
        if (obj.get(f) or {}) != (old.get(f) or {}):
            errs.forbidden(f, "field is immutable when `immutable` is set")
    if not obj.get("immutable"):
        errs.forbidden("immutable", "field is immutable when `immutable` is set")


def _json_size_bound(data: Any) -> int | None:
    """An upper bound of ``len(json.dumps(data))`` for a map of strings (None otherwise): with
    ``ensure_ascii`` a character takes at most 12 characters (a surrogate pair of ``\\uXXXX``)."""
    if type(data) is not dict:
        return None
    total = 2
    for k, v in data.items():
        if type(k) is not str or type(v) is not str:
            return None
        total += 12 * (len(k) + len(v)) + 8  # quotes, ": " and ", "
    return total


def _json_size_over(data: Any, binary: Any, limit: int) -> bool:
    """``len(json.dumps(data)) + len(json.dumps(binary)) > limit``, without encoding small maps."""
    a, b = _json_size_bound(data), _json_size_bound(binary)
    if a is not None and b is not None and a + b <= limit:
        return False
    return len(json.dumps(data)) + len(json.dumps(binary)) > limit


def configmap(obj: Obj, errs: Errors, update: bool, old: Obj) -> None:
    _config_keys(obj, errs, ("data", "binaryData"))
    if _json_size_over(obj.get("data") or {}, obj.get("binaryData") or {}, 1024 * 1024):
        errs.add("FieldValueTooLong", "", "Too long: must have at most 1048576 bytes")
    _immutable_data(obj, errs, update, old, ("data", "binaryData"))


def secret(obj: Obj, errs: Errors, update: bool, old: Obj) -> None:
    _config_keys(obj, errs, ("data", "stringData"))
    total = sum(len(v or "") * 3 // 4 for v in (obj.get("data") or {}).values())
    if total > 1024 * 1024:
        errs.add("FieldValueTooLong", "data", "Too long: must have at most 1048576 bytes")
    if update:
        immutable(errs, "type", obj.get("type"), old.get("type"))
    _immutable_data(obj, errs, update, old, ("data",))
    stype = obj.get("type")
    data = obj.get("data") or {}
    if stype == "kubernetes.io/tls":
        for k in ("tls.crt", "tls.key"):
            if k not in data and k not in (obj.get("stringData") or {}):
                errs.required(f"data[{k}]", "")
    elif stype == "kubernetes.io/dockerconfigjson" and ".dockerconfigjson" not in data:
        errs.required("data[.dockerconfigjson]", "")


def pod(obj: Obj, errs: Errors, update: bool, old: Obj) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        errs.required("spec.containers", "")
        return
    pods.validate_pod_spec(spec, "spec", errs)
    rp = spec.get("restartPolicy")
    if rp is not None and rp not in ("Always", "OnFailure", "Never"):
        errs.not_supported("spec.restartPolicy", rp, ("Always", "OnFailure", "Never"))
    if update:
        pods.validate_pod_update(spec, spec_of(old), errs)
    elif spec.get("ephemeralContainers"):  # only through pods/ephemeralcontainers (ValidatePodCreate)
        errs.forbidden("spec.ephemeralContainers", "cannot be set on create")


MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror"


def pod_ephemeral_containers(obj: Obj, errs: Errors, old: Obj) -> None:
    """``ValidatePodEphemeralContainersUpdate``: an update through ``pods/ephemeralcontainers``
    (the strategy already kept everything of the old pod but ``spec.ephemeralContainers``): the
    pod spec's rules, then ephemeral containers may only be added. Static pods refuse them."""
    if MIRROR_POD_ANNOTATION in ((old.get("metadata") or {}).get("annotations") or {}):
        errs.forbidden("", "static pods do not support ephemeral containers")
        return
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        errs.required("spec.containers", "")
        return
    pods.validate_pod_spec(spec, "spec", errs)
    pods.validate_ephemeral_containers_update(spec, spec_of(old), errs)


def namespace(obj: Obj, errs: Errors, update: bool, old: Obj) -> None:
    for i, f in enumerate(spec_of(obj).get("finalizers") or []):
        msg = qualified_name_error(f) if isinstance(f, str) else "must be a string"
        if msg:
            errs.invalid(f"spec.finalizers[{i}]", f, msg)


def lease(obj: Obj, errs: Errors, update: bool, old: Obj) -> None:
    spec = spec_of(obj)
    for k in ("leaseDurationSeconds", "leaseTransitions"):
        v = spec.get(k)
        if isinstance(v, int) and (v < 0 or (k == "leaseDurationSeconds" and v == 0)):
            errs.invalid(f"spec.{k}", v, "must be greater than 0" if k == "leaseDurationSeconds"
                         else "must be greater than or equal to 0")


def event(obj: Obj, errs: Errors, update: bool, old: Obj) -> None:
    ns = (obj.get("metadata") or {}).get("namespace")
    inv = obj.get("involvedObject") or obj.get("regarding") or {}
    io_ns = inv.get("namespace") if isinstance(inv, dict) else None
    if ns and io_ns and ns != io_ns:
        errs.invalid("involvedObject.namespace", io_ns, "does not match event.namespace")


def replication_controller(obj: Obj, errs: Errors, update: bool, old: Obj) -> None:
    """``ValidateReplicationController``: an equality-based selector that is not empty and
    matches the template's labels, an ``Always`` restart policy, no activeDeadlineSeconds."""
    spec = spec_of(obj)
    nonneg(errs, spec, "minReadySeconds", "spec.minReadySeconds")
    selector = spec.get("selector")
    if not selector:
        errs.required("spec.selector", "")
    elif isinstance(selector, dict):
        validate_labels(selector, "spec.selector", errs)
    nonneg(errs, spec, "replicas", "spec.replicas")
    template = spec.get("template")
    if not isinstance(template, dict):
        errs.required("spec.template", "")
        return
    labels = (template.get("metadata") or {}).get("labels") or {}
    if isinstance(selector, dict) and selector and any(labels.get(k) != v for k, v in selector.items()):
        errs.invalid("spec.template.metadata.labels", go_map(labels), "`selector` does not match template `labels`")
    validate_labels(labels, "spec.template.metadata.labels", errs)
    tspec = template.get("spec")
    if not isinstance(tspec, dict):
        errs.required("spec.template.spec.containers", "")
        return
    pods.validate_pod_spec(tspec, "spec.template.spec", errs)
    rp = tspec.get("restartPolicy")
    if rp != "Always":
        errs.not_supported("spec.template.spec.restartPolicy", rp, ("Always",))
    if tspec.get("activeDeadlineSeconds") is not None:
        errs.forbidden("spec.template.spec.activeDeadlineSeconds",
                       "activeDeadlineSeconds in ReplicationController is not Supported")
