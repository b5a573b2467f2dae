"""Pod spec validation (``ValidatePodSpec`` / ``ValidatePodUpdate`` subset of Kubernetes 1.32):
containers (names, images, ports, env, resources, probes, mounts), volumes, policies, and the
pod-update immutability rule. Used for pods and for every pod template (deployments, jobs, …).
Neighbours: ``validation_rules.py`` (caller), ``validation_names.py``.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from controlplane.apiserver.validation_names import Errors, dns1123_label_error, dns1123_subdomain_error
from controlplane.machinery.quantity import parse_quantity

Obj = dict[str, Any]

IANA_MSG = ("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
_IANA_RE = re.compile(r"^[-a-z0-9]+$")
_ENV_RE = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_PULL = ("Always", "IfNotPresent", "Never")
_DNS = ("ClusterFirst", "ClusterFirstWithHostNet", "Default", "None")
_PROTOCOLS = ("SCTP", "TCP", "UDP")
_MSG_POLICY = ("FallbackToLogsOnError", "File")
_POD_UPDATE_MSG = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only "
    "additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set "
    "to 1 if it was previously negative)")


def iana_svc_name_ok(name: str) -> bool:
    return (0 < len(name) <= 15 and bool(_IANA_RE.match(name)) and "--" not in name
            and not name.startswith("-") and not name.endswith("-")
            and any(c.isalpha() for c in name))


def port_number(errs: Errors, path: str, value: Any, *, required: bool = False) -> None:
    if value is None:
        if required:
            errs.required(path, "")
        return
    if isinstance(value, int) and not isinstance(value, bool) and not 1 <= value <= 65535:
        errs.invalid(path, value, "must be between 1 and 65535, inclusive")


def protocol(errs: Errors, path: str, value: Any) -> None:
    if value is not None and value not in _PROTOCOLS:
        errs.not_supported(path, value, _PROTOCOLS)


def _enum(errs: Errors, path: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value is not None and value not in allowed:
        errs.not_supported(path, value, allowed)


def _resources(errs: Errors, path: str, res: Any) -> None:
    if not isinstance(res, dict):
        return
    parsed: dict[str, dict[str, Any]] = {}
    for kind in ("limits", "requests"):
        for rname, q in (res.get(kind) or {}).items():
            try:
                v = parse_quantity(q)
            except (ValueError, TypeError, ZeroDivisionError):
                errs.invalid(f"{path}.{kind}[{rname}]", q,
                             "quantities must match the regular expression "
                             "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
                continue
            if v < 0:
                errs.invalid(f"{path}.{kind}[{rname}]", q, "must be greater than or equal to 0")
            parsed.setdefault(kind, {})[rname] = v
    for rname, req in parsed.get("requests", {}).items():
        lim = parsed.get("limits", {}).get(rname)
        if lim is not None and req > lim:
            limit_raw = res["limits"][rname]
            errs.invalid(f"{path}.requests", res["requests"][rname],
                         f"must be less than or equal to {rname} limit of {limit_raw}")


def _container(errs: Errors, path: str, c: Any, names: set[str], volumes: set[str],
               is_init: bool = False) -> None:
    if not isinstance(c, dict):
        errs.required(path, "")
        return
    name = c.get("name")
    if not name:
        errs.required(f"{path}.name", "")
    else:
        msg = dns1123_label_error(name)
        if msg:
            errs.invalid(f"{path}.name", name, msg)
        if name in names:
            errs.duplicate(f"{path}.name", name)
        names.add(name)
    image = c.get("image")
    if not image or (isinstance(image, str) and not image.strip()):
        errs.required(f"{path}.image", "")
    _enum(errs, f"{path}.imagePullPolicy", c.get("imagePullPolicy"), _PULL)
    _enum(errs, f"{path}.terminationMessagePolicy", c.get("terminationMessagePolicy"), _MSG_POLICY)
    port_names: set[str] = set()
    for i, p in enumerate(c.get("ports") or []):
        pp = f"{path}.ports[{i}]"
        if not isinstance(p, dict):
            continue
        port_number(errs, f"{pp}.containerPort", p.get("containerPort"), required=True)
        port_number(errs, f"{pp}.hostPort", p.get("hostPort") or None)
        protocol(errs, f"{pp}.protocol", p.get("protocol"))
        pname = p.get("name")
        if pname:
            if not iana_svc_name_ok(pname):
                errs.invalid(f"{pp}.name", pname, IANA_MSG if len(pname) <= 15
                             else "must be no more than 15 characters")
            if pname in port_names:
                errs.duplicate(f"{pp}.name", pname)
            port_names.add(pname)
    for i, e in enumerate(c.get("env") or []):
        if not isinstance(e, dict):
            continue
        en = e.get("name")
        if not en:
            errs.required(f"{path}.env[{i}].name", "")
        elif not _ENV_RE.match(en):
            errs.invalid(f"{path}.env[{i}].name", en,
                         "a valid environment variable name must consist of alphabetic characters, "
                         "digits, '_', '-', or '.', and must not start with a digit (e.g. "
                         "'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for "
                         "validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')")
        if e.get("value") and e.get("valueFrom"):
            errs.invalid(f"{path}.env[{i}].valueFrom", "",
                         "may not be specified when `value` is not empty")
    _resources(errs, f"{path}.resources", c.get("resources"))
    for i, m in enumerate(c.get("volumeMounts") or []):
        if not isinstance(m, dict):
            continue
        mp = f"{path}.volumeMounts[{i}]"
        if not m.get("name"):
            errs.required(f"{mp}.name", "")
        elif m["name"] not in volumes:
            errs.not_found(f"{mp}.name", m["name"])
        if not m.get("mountPath"):
            errs.required(f"{mp}.mountPath", "")
    if is_init:
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            if c.get(probe) and c.get("restartPolicy") != "Always":
                errs.forbidden(f"{path}.{probe}", "may not be set for init containers without "
                               "restartPolicy=Always")


def validate_pod_spec(spec: Obj, path: str, errs: Errors) -> None:
    volumes: set[str] = set()
    for i, v in enumerate(spec.get("volumes") or []):
        if not isinstance(v, dict):
            continue
        vn = v.get("name")
        if not vn:
            errs.required(f"{path}.volumes[{i}].name", "")
            continue
        msg = dns1123_label_error(vn)
        if msg:
            errs.invalid(f"{path}.volumes[{i}].name", vn, msg)
        if vn in volumes:
            errs.duplicate(f"{path}.volumes[{i}].name", vn)
        volumes.add(vn)
    containers = spec.get("containers")
    if not containers:
        errs.required(f"{path}.containers", "")
    names: set[str] = set()
    for i, c in enumerate(spec.get("initContainers") or []):
        _container(errs, f"{path}.initContainers[{i}]", c, names, volumes, is_init=True)
    for i, c in enumerate(containers or []):
        _container(errs, f"{path}.containers[{i}]", c, names, volumes)
    _enum(errs, f"{path}.dnsPolicy", spec.get("dnsPolicy"), _DNS)
    for key in ("terminationGracePeriodSeconds", "activeDeadlineSeconds"):
        v = spec.get(key)
        if isinstance(v, int) and (v < 0 if key != "activeDeadlineSeconds" else v <= 0):
            errs.invalid(f"{path}.{key}", v, "must be greater than or equal to 0"
                         if key != "activeDeadlineSeconds" else "must be between 1 and 2147483647, inclusive")
    if spec.get("nodeName"):
        msg = dns1123_subdomain_error(spec["nodeName"])
        if msg:
            errs.invalid(f"{path}.nodeName", spec["nodeName"], msg)
    for i, t in enumerate(spec.get("tolerations") or []):
        if not isinstance(t, dict):
            continue
        op = t.get("operator", "Equal")
        _enum(errs, f"{path}.tolerations[{i}].operator", op, ("Equal", "Exists"))
        if op == "Exists" and t.get("value"):
            errs.invalid(f"{path}.tolerations[{i}].operator", t["value"],
                         "value must be empty when `operator` is 'Exists'")
        _enum(errs, f"{path}.tolerations[{i}].effect", t.get("effect") or None,
              ("NoExecute", "NoSchedule", "PreferNoSchedule"))


def validate_pod_update(new: Obj, old: Obj, errs: Errors) -> None:
    """Only images, activeDeadlineSeconds, toleration additions, scheduling gates removal (and
    the first binding to a node) may change in a pod spec."""
    a, b = copy.deepcopy(new), copy.deepcopy(old)
    for spec in (a, b):
        for key in ("containers", "initContainers"):
            for c in spec.get(key) or []:
                if isinstance(c, dict):
                    c.pop("image", None)
        spec.pop("activeDeadlineSeconds", None)
        spec.pop("tolerations", None)
        spec.pop("schedulingGates", None)
    if not b.get("nodeName"):
        a.pop("nodeName", None)
        b.pop("nodeName", None)
    if a != b:
        errs.forbidden("spec", _POD_UPDATE_MSG)
    def sans_seconds(ts: Any) -> list[Any]:
        return [{k: v for k, v in t.items() if k != "tolerationSeconds"} if isinstance(t, dict) else t
                for t in ts or []]

    old_tol, new_tol = sans_seconds(old.get("tolerations")), sans_seconds(new.get("tolerations"))
    if any(t not in new_tol for t in old_tol):
        errs.forbidden("spec.tolerations", "existing toleration can not be modified except its "
                       "tolerationSeconds")
    old_gates = [g.get("name") for g in old.get("schedulingGates") or [] if isinstance(g, dict)]
    if any(isinstance(g, dict) and g.get("name") not in old_gates for g in new.get("schedulingGates") or []):
        errs.forbidden("spec.schedulingGates", "only deletion is allowed, but found new scheduling gate")
    for key in ("containers", "initContainers"):
        for i, c in enumerate(new.get(key) or []):
            if isinstance(c, dict) and "image" in c and not c["image"]:
                errs.required(f"spec.{key}[{i}].image", "")
