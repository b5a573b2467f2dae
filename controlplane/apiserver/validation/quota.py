"""Validation of LimitRange and ResourceQuota (``ValidateLimitRange``,
``ValidateResourceQuota`` of Kubernetes 1.32) with Kubernetes' messages: valid quantities, no
negative amounts, integer counts, min <= defaultRequest <= default <= max, ratios, supported
limit types and quota scopes. Caller: ``rules.py``.
"""

from __future__ import annotations

import json
from fractions import Fraction
from typing import Any

from controlplane.apiserver.meta.names import Errors, qualified_name_error
from controlplane.machinery.quantity import parse_quantity

Obj = dict[str, Any]
LIMIT_TYPES = ("Container", "PersistentVolumeClaim", "Pod")
SCOPES = ("BestEffort", "CrossNamespacePodAffinity", "NotBestEffort", "NotTerminating", "PriorityClass", "Terminating")


def _q(errs: Errors, path: str, value: Any) -> Fraction | None:
    try:
        q = parse_quantity(value)
    except (ValueError, TypeError, ZeroDivisionError):
        errs.invalid(path, value, "quantities must match the regular expression "
                     "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
        return None
    if q < 0:
        errs.invalid(path, value, "must be greater than or equal to 0")
        return None
    return q


def _resource_list(rl: Any, path: str, errs: Errors) -> dict[str, Fraction]:
    out: dict[str, Fraction] = {}
    for k, v in (rl if isinstance(rl, dict) else {}).items():
        msg = qualified_name_error(k)
        if msg:
            errs.invalid(path, k, msg)
            continue
        q = _q(errs, f"{path}[{k}]", v)
        if q is not None:
            out[k] = q
    return out


def limit_range(obj: Obj, errs: Errors, update: bool, old: Obj) -> None:
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    seen: set[str] = set()
    for i, item in enumerate(spec.get("limits") or []):
        if not isinstance(item, dict):
            continue
        p = f"spec.limits[{i}]"
        ltype = item.get("type", "")
        if ltype not in LIMIT_TYPES:
            errs.not_supported(f"{p}.type", ltype, LIMIT_TYPES)
        if ltype in seen:
            errs.duplicate(f"{p}.type", ltype)
        seen.add(ltype)
        mx = _resource_list(item.get("max"), f"{p}.max", errs)
        mn = _resource_list(item.get("min"), f"{p}.min", errs)
        dl = _resource_list(item.get("default"), f"{p}.default", errs)
        dr = _resource_list(item.get("defaultRequest"), f"{p}.defaultRequest", errs)
        ratio = _resource_list(item.get("maxLimitRequestRatio"), f"{p}.maxLimitRequestRatio", errs)
        raw = {k: item.get(k) or {} for k in ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio")}
        if ltype == "Pod":
            for k in dl:
                errs.forbidden(f"{p}.default[{k}]", "may not be specified when `type` is 'Pod'")
            for k in dr:
                errs.forbidden(f"{p}.defaultRequest[{k}]", "may not be specified when `type` is 'Pod'")
        for k in set(mx) | set(mn) | set(dl) | set(dr) | set(ratio):
            def s(f: str) -> str:
                return str(raw[f].get(k))
            if k in mn and k in mx and mn[k] > mx[k]:
                errs.invalid(f"{p}.min[{k}]", s("min"), f"min value {s('min')} is greater than max value {s('max')}")
            if k in dr and k in mx and dr[k] > mx[k]:
                errs.invalid(f"{p}.defaultRequest[{k}]", s("defaultRequest"),
                             f"default request value {s('defaultRequest')} is greater than max value {s('max')}")
            if k in dr and k in dl and dr[k] > dl[k]:
                errs.invalid(f"{p}.defaultRequest[{k}]", s("defaultRequest"),
                             f"default request value {s('defaultRequest')} is greater than default limit value {s('default')}")
            if k in dl and k in mx and dl[k] > mx[k]:
                errs.invalid(f"{p}.default[{k}]", s("default"), f"default value {s('default')} is greater than max value {s('max')}")
            if k in mn and k in dr and mn[k] > dr[k]:
                errs.invalid(f"{p}.defaultRequest[{k}]", s("defaultRequest"),
                             f"min value {s('min')} is greater than default request value {s('defaultRequest')}")
            if k in mn and k in dl and mn[k] > dl[k]:
                errs.invalid(f"{p}.default[{k}]", s("default"), f"min value {s('min')} is greater than default value {s('default')}")
            if k in ratio:
                if ratio[k] < 1:
                    errs.invalid(f"{p}.maxLimitRequestRatio[{k}]", s("maxLimitRequestRatio"),
                                 f"ratio {s('maxLimitRequestRatio')} is less than 1")
                if k in mx and k in mn and mn[k] > 0 and ratio[k] > mx[k] / mn[k]:
                    errs.invalid(f"{p}.maxLimitRequestRatio[{k}]", s("maxLimitRequestRatio"),
                                 f"ratio {s('maxLimitRequestRatio')} is greater than max/min = {float(mx[k] / mn[k]):f}")


_INTEGER = ("pods", "services", "replicationcontrollers", "resourcequotas", "secrets", "configmaps",
            "persistentvolumeclaims", "services.nodeports", "services.loadbalancers")


# helper.IsStandardQuotaResourceName and IsResourceQuotaScopeValidForResource
_STANDARD = ("cpu", "memory", "ephemeral-storage", "requests.cpu", "requests.memory", "requests.storage",
             "requests.ephemeral-storage", "limits.cpu", "limits.memory", "limits.ephemeral-storage", "pods",
             "resourcequotas", "services", "replicationcontrollers", "secrets", "persistentvolumeclaims",
             "configmaps", "services.nodeports", "services.loadbalancers")
_POD_COMPUTE = ("cpu", "memory", "limits.cpu", "limits.memory", "requests.cpu", "requests.memory")


def _scope_fits(scope: str, resource: str) -> bool:
    if scope == "BestEffort":
        return resource == "pods"
    if scope in ("Terminating", "NotTerminating", "NotBestEffort", "PriorityClass", "CrossNamespacePodAffinity"):
        return resource == "pods" or resource in _POD_COMPUTE
    return True


def _scopes(spec: Obj, hard: dict[str, Fraction], errs: Errors) -> None:
    """``validateResourceQuotaScopes``: known scopes, each valid for every standard resource of
    ``hard``, no BestEffort with NotBestEffort nor Terminating with NotTerminating. The value is
    the whole list, rendered as Go's ``%#v`` does."""
    scopes = spec.get("scopes") or []
    if not isinstance(scopes, list) or not scopes:
        return
    value = "[]core.ResourceQuotaScope{" + ", ".join(json.dumps(str(s)) for s in scopes) + "}"
    messages: list[str] = []
    for scope in scopes:
        if scope not in SCOPES:
            messages.append("unsupported scope")
        for k in sorted(hard):
            if (k in _STANDARD or k.startswith("hugepages-") or k.startswith("requests.hugepages-")) \
                    and not _scope_fits(scope, k):
                messages.append("unsupported scope applied to resource")
    for pair in (("BestEffort", "NotBestEffort"), ("Terminating", "NotTerminating")):
        if all(p in scopes for p in pair):
            messages.append("conflicting scopes")
    for m in dict.fromkeys(messages):  # the aggregate drops repeated messages
        errs.add("FieldValueInvalid", "spec.scopes", f"Invalid value: {value}: {m}")


def resource_quota(obj: Obj, errs: Errors, update: bool, old: Obj) -> None:
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    hard = _resource_list(spec.get("hard"), "spec.hard", errs)
    for k, q in hard.items():
        if (k in _INTEGER or k.startswith("count/")) and q.denominator != 1:
            errs.invalid(f"spec.hard[{k}]", str(spec["hard"][k]), "must be an integer")
    _scopes(spec, hard, errs)
    sel = spec.get("scopeSelector")
    for i, expr in enumerate((sel or {}).get("matchExpressions") or [] if isinstance(sel, dict) else []):
        if not isinstance(expr, dict):
            continue
        if expr.get("scopeName") not in SCOPES:
            errs.not_supported(f"spec.scopeSelector.matchExpressions[{i}].scopeName", expr.get("scopeName"), SCOPES)
        op = expr.get("operator")
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            errs.not_supported(f"spec.scopeSelector.matchExpressions[{i}].operator", op,
                               ("DoesNotExist", "Exists", "In", "NotIn"))
