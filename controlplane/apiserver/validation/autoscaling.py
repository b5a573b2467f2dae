"""Validation of autoscaling/v2 HorizontalPodAutoscalers (``pkg/apis/autoscaling/validation``
of Kubernetes 1.32), on the stored (v2) form of either served version: replica bounds,
the scale target reference, every metric source and target, and the behavior rules.
"""

from __future__ import annotations

from typing import Any

from controlplane.apiserver.meta.names import Errors
from controlplane.machinery.quantity import parse_quantity

Obj = dict[str, Any]
MAX_PERIOD = 1800
MAX_STABILIZATION = 3600
SOURCES = {"Object": "object", "Pods": "pods", "Resource": "resource", "ContainerResource": "containerResource",
           "External": "external"}
TARGET_TYPES = ("Utilization", "Value", "AverageValue")


def _positive_quantity(errs: Errors, value: Any, path: str) -> None:
    try:
        q = parse_quantity(value)
    except (ValueError, TypeError):
        errs.invalid(path, value, "must be a quantity")
        return
    if q <= 0:
        errs.invalid(path, value, "must be positive")


def cross_version_ref(ref: Any, errs: Errors, path: str) -> None:
    ref = ref if isinstance(ref, dict) else {}
    if not ref.get("kind"):
        errs.required(f"{path}.kind", "")
    elif "/" in ref["kind"] or "%" in ref["kind"]:
        errs.invalid(f"{path}.kind", ref["kind"], 'may not contain "/" or "%"')
    if not ref.get("name"):
        errs.required(f"{path}.name", "")
    elif "/" in ref["name"] or "%" in ref["name"]:
        errs.invalid(f"{path}.name", ref["name"], 'may not contain "/" or "%"')


def metric_target(t: Any, errs: Errors, path: str) -> None:
    t = t if isinstance(t, dict) else {}
    tt = t.get("type")
    if not tt:
        errs.required(f"{path}.type", "must specify a metric target type")
    elif tt not in TARGET_TYPES:
        errs.not_supported(f"{path}.type", tt, TARGET_TYPES)
    if t.get("value") is not None:
        _positive_quantity(errs, t["value"], f"{path}.value")
    if t.get("averageValue") is not None:
        _positive_quantity(errs, t["averageValue"], f"{path}.averageValue")
    if t.get("averageUtilization") is not None and int(t["averageUtilization"]) < 1:
        errs.invalid(f"{path}.averageUtilization", t["averageUtilization"], "must be greater than 0")
    if tt == "Utilization" and t.get("averageUtilization") is None:
        errs.required(f"{path}.averageUtilization", "must set either a target raw value or a target utilization")
    if tt == "Value" and t.get("value") is None:
        errs.required(f"{path}.value", "must set either a target value for metric or a per-pod target")
    if tt == "AverageValue" and t.get("averageValue") is None:
        errs.required(f"{path}.averageValue", "must set either a target value for metric or a per-pod target")


def metric_spec(m: Any, errs: Errors, path: str) -> None:
    m = m if isinstance(m, dict) else {}
    mtype = m.get("type")
    if not mtype:
        errs.required(f"{path}.type", "must specify a metric source type")
        return
    if mtype not in SOURCES:
        errs.not_supported(f"{path}.type", mtype, tuple(SOURCES))
        return
    set_sources = [k for k, v in SOURCES.items() if m.get(v) is not None]
    if set_sources != [mtype]:
        if mtype not in set_sources:
            errs.required(f"{path}.{SOURCES[mtype]}", "must populate information for the given metric source")
        if [s for s in set_sources if s != mtype]:
            errs.forbidden(path, "must populate the given metric source only")
        if mtype not in set_sources:
            return
    src = m[SOURCES[mtype]]
    sp = f"{path}.{SOURCES[mtype]}"
    if mtype in ("Resource", "ContainerResource"):
        if not src.get("name"):
            errs.required(f"{sp}.name", "must specify a resource name")
        if mtype == "ContainerResource" and not src.get("container"):
            errs.required(f"{sp}.container", "must specify a container")
        tgt = src.get("target") or {}
        metric_target(tgt, errs, f"{sp}.target")
        if tgt.get("type") == "Value":
            errs.not_supported(f"{sp}.target.type", "Value", ("Utilization", "AverageValue"))
    else:
        if mtype == "Object":
            cross_version_ref(src.get("describedObject"), errs, f"{sp}.describedObject")
        if not (src.get("metric") or {}).get("name"):
            errs.required(f"{sp}.metric.name", "must specify a metric name")
        tgt = src.get("target") or {}
        metric_target(tgt, errs, f"{sp}.target")
        if mtype == "Pods" and tgt.get("type") not in (None, "AverageValue"):
            errs.not_supported(f"{sp}.target.type", tgt.get("type"), ("AverageValue",))
        if tgt.get("type") == "Utilization":
            errs.not_supported(f"{sp}.target.type", "Utilization", ("Value", "AverageValue"))


def scaling_rules(rules: Any, errs: Errors, path: str) -> None:
    if rules is None:
        return
    rules = rules if isinstance(rules, dict) else {}
    w = rules.get("stabilizationWindowSeconds")
    if w is not None:
        if int(w) < 0:
            errs.invalid(f"{path}.stabilizationWindowSeconds", w, "must be greater than or equal to zero")
        elif int(w) > MAX_STABILIZATION:
            errs.invalid(f"{path}.stabilizationWindowSeconds", w, f"must be less than or equal to {MAX_STABILIZATION}")
    sel = rules.get("selectPolicy")
    if sel is not None and sel not in ("Max", "Min", "Disabled"):
        errs.not_supported(f"{path}.selectPolicy", sel, ("Disabled", "Max", "Min"))
    policies = rules.get("policies")
    if not policies:
        errs.required(f"{path}.policies", "must specify at least one Policy")
        return
    for i, p in enumerate(policies):
        pp = f"{path}.policies[{i}]"
        p = p if isinstance(p, dict) else {}
        if p.get("type") not in ("Pods", "Percent"):
            errs.not_supported(f"{pp}.type", p.get("type"), ("Percent", "Pods"))
        if int(p.get("value") or 0) <= 0:
            errs.invalid(f"{pp}.value", p.get("value", 0), "must be greater than zero")
        period = int(p.get("periodSeconds") or 0)
        if period <= 0:
            errs.invalid(f"{pp}.periodSeconds", period, "must be greater than zero")
        elif period > MAX_PERIOD:
            errs.invalid(f"{pp}.periodSeconds", period, f"must be less than or equal to {MAX_PERIOD}")


def horizontal_pod_autoscaler(obj: Obj, errs: Errors, update: bool, old: Obj) -> None:
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    cross_version_ref(spec.get("scaleTargetRef"), errs, "spec.scaleTargetRef")
    lo = spec.get("minReplicas")
    hi = spec.get("maxReplicas")
    if lo is not None and int(lo) < 1:
        errs.invalid("spec.minReplicas", lo, "must be greater than or equal to 1")
    if hi is None or int(hi) < 1:
        errs.invalid("spec.maxReplicas", hi if hi is not None else 0, "must be greater than 0")
    elif lo is not None and int(lo) > int(hi):
        errs.invalid("spec.maxReplicas", hi, "must be greater than or equal to `minReplicas`")
    for i, m in enumerate(spec.get("metrics") or []):
        metric_spec(m, errs, f"spec.metrics[{i}]")
    b = spec.get("behavior")
    if isinstance(b, dict):
        scaling_rules(b.get("scaleUp"), errs, "spec.behavior.scaleUp")
        scaling_rules(b.get("scaleDown"), errs, "spec.behavior.scaleDown")
