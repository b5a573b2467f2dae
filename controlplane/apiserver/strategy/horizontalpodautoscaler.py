"""HorizontalPodAutoscaler (``pkg/registry/autoscaling/horizontalpodautoscaler``): stored as
``autoscaling/v2`` and also served as ``autoscaling/v1`` (what ``kubectl autoscale`` writes),
converted as Kubernetes converts them (``pkg/apis/autoscaling/v1/conversion.go``): v1's
``targetCPUUtilizationPercentage`` / ``currentCPUUtilizationPercentage`` are the CPU
utilization metric; every other metric, the current metrics, the conditions and ``behavior``
travel in the ``autoscaling.alpha.kubernetes.io/*`` annotations (in v1's v2beta1-shaped
MetricSpec), so a v1 client round-trips a v2 object without loss. Defaults: ``minReplicas`` 1,
a CPU utilization target of 80 % when no metric is given, and the scale-up / scale-down rules
filled in when ``behavior`` is set. ``metadata.generation`` is tracked.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from controlplane.apiserver.discovery.registry import ResourceInfo
from controlplane.apiserver.strategy.base import Strategy

Obj = dict[str, Any]

METRICS_ANN = "autoscaling.alpha.kubernetes.io/metrics"
CURRENT_METRICS_ANN = "autoscaling.alpha.kubernetes.io/current-metrics"
CONDITIONS_ANN = "autoscaling.alpha.kubernetes.io/conditions"
BEHAVIOR_ANN = "autoscaling.alpha.kubernetes.io/behavior"
ROUND_TRIP = (METRICS_ANN, CURRENT_METRICS_ANN, CONDITIONS_ANN, BEHAVIOR_ANN)
DEFAULT_CPU_UTILIZATION = 80


def _sub(obj: Obj, key: str) -> Obj:
    v = obj.get(key)
    if not isinstance(v, dict):
        v = obj[key] = {}
    return v


def scale_up_rules(rules: Obj | None) -> Obj:
    out = copy.deepcopy(rules) if rules else {}
    out.setdefault("stabilizationWindowSeconds", 0)
    out.setdefault("selectPolicy", "Max")
    if not out.get("policies"):
        out["policies"] = [{"type": "Pods", "value": 4, "periodSeconds": 15},
                           {"type": "Percent", "value": 100, "periodSeconds": 15}]
    return out


def scale_down_rules(rules: Obj | None) -> Obj:
    out = copy.deepcopy(rules) if rules else {}
    out.setdefault("selectPolicy", "Max")
    if not out.get("policies"):
        out["policies"] = [{"type": "Percent", "value": 100, "periodSeconds": 15}]
    return out


def set_defaults_v2(obj: Obj) -> None:
    """``SetDefaults_HorizontalPodAutoscaler`` of autoscaling/v2."""
    spec = _sub(obj, "spec")
    if spec.get("minReplicas") is None:
        spec["minReplicas"] = 1
    if not spec.get("metrics"):
        spec["metrics"] = [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": DEFAULT_CPU_UTILIZATION}}}]
    if isinstance(spec.get("behavior"), dict):
        b = spec["behavior"]
        b["scaleUp"] = scale_up_rules(b.get("scaleUp"))
        b["scaleDown"] = scale_down_rules(b.get("scaleDown"))


# --- v1 <-> v2 ----------------------------------------------------------------------------------

def _is_cpu_utilization(m: Obj) -> bool:
    r = m.get("resource") or {}
    return m.get("type") == "Resource" and r.get("name") == "cpu" and \
        (r.get("target") or {}).get("averageUtilization") is not None


def _drop(d: Obj, *keys: str) -> Obj:
    return {k: v for k, v in d.items() if k not in keys and v is not None}


def metric_spec_to_v1(m: Obj) -> Obj:
    t = m.get("type", "")
    out: Obj = {"type": t}
    if t == "Resource" and m.get("resource") is not None:
        r = m["resource"]
        tg = r.get("target") or {}
        out["resource"] = _drop({"name": r.get("name"), "targetAverageUtilization": tg.get("averageUtilization"),
                                 "targetAverageValue": tg.get("averageValue")})
    elif t == "ContainerResource" and m.get("containerResource") is not None:
        r = m["containerResource"]
        tg = r.get("target") or {}
        out["containerResource"] = _drop({"name": r.get("name"), "container": r.get("container"),
                                          "targetAverageUtilization": tg.get("averageUtilization"),
                                          "targetAverageValue": tg.get("averageValue")})
    elif t == "Pods" and m.get("pods") is not None:
        p = m["pods"]
        mt, tg = p.get("metric") or {}, p.get("target") or {}
        out["pods"] = _drop({"metricName": mt.get("name"), "selector": mt.get("selector"),
                             "targetAverageValue": tg.get("averageValue")})
    elif t == "Object" and m.get("object") is not None:
        o = m["object"]
        mt, tg = o.get("metric") or {}, o.get("target") or {}
        out["object"] = _drop({"target": o.get("describedObject"), "metricName": mt.get("name"),
                               "targetValue": tg.get("value"), "selector": mt.get("selector"),
                               "averageValue": tg.get("averageValue")})
    elif t == "External" and m.get("external") is not None:
        e = m["external"]
        mt, tg = e.get("metric") or {}, e.get("target") or {}
        out["external"] = _drop({"metricName": mt.get("name"), "metricSelector": mt.get("selector"),
                                 "targetValue": tg.get("value"), "targetAverageValue": tg.get("averageValue")})
    return out


def metric_spec_from_v1(m: Obj) -> Obj:
    t = m.get("type", "")
    out: Obj = {"type": t}

    def target(util: Any, avg: Any, value: Any = None) -> Obj:
        if util is not None:
            return {"type": "Utilization", "averageUtilization": util}
        if avg is not None:
            return {"type": "AverageValue", "averageValue": avg}
        return {"type": "Value", "value": value}

    if t == "Resource" and m.get("resource") is not None:
        r = m["resource"]
        out["resource"] = {"name": r.get("name"), "target": target(r.get("targetAverageUtilization"),
                                                                   r.get("targetAverageValue"))}
    elif t == "ContainerResource" and m.get("containerResource") is not None:
        r = m["containerResource"]
        out["containerResource"] = {"name": r.get("name"), "container": r.get("container"),
                                    "target": target(r.get("targetAverageUtilization"), r.get("targetAverageValue"))}
    elif t == "Pods" and m.get("pods") is not None:
        p = m["pods"]
        out["pods"] = {"metric": _drop({"name": p.get("metricName"), "selector": p.get("selector")}),
                       "target": {"type": "AverageValue", "averageValue": p.get("targetAverageValue")}}
    elif t == "Object" and m.get("object") is not None:
        o = m["object"]
        out["object"] = {"describedObject": o.get("target"),
                         "metric": _drop({"name": o.get("metricName"), "selector": o.get("selector")}),
                         "target": target(None, o.get("averageValue"), o.get("targetValue"))}
    elif t == "External" and m.get("external") is not None:
        e = m["external"]
        out["external"] = {"metric": _drop({"name": e.get("metricName"), "selector": e.get("metricSelector")}),
                           "target": target(None, e.get("targetAverageValue"), e.get("targetValue"))}
    return out


def metric_status_to_v1(m: Obj) -> Obj:
    t = m.get("type", "")
    out: Obj = {"type": t}
    if t == "Resource" and m.get("resource") is not None:
        r = m["resource"]
        c = r.get("current") or {}
        out["resource"] = _drop({"name": r.get("name"), "currentAverageUtilization": c.get("averageUtilization"),
                                 "currentAverageValue": c.get("averageValue") or "0"})
    elif t == "ContainerResource" and m.get("containerResource") is not None:
        r = m["containerResource"]
        c = r.get("current") or {}
        out["containerResource"] = _drop({"name": r.get("name"), "container": r.get("container"),
                                          "currentAverageUtilization": c.get("averageUtilization"),
                                          "currentAverageValue": c.get("averageValue") or "0"})
    elif t == "Pods" and m.get("pods") is not None:
        p = m["pods"]
        mt, c = p.get("metric") or {}, p.get("current") or {}
        out["pods"] = _drop({"metricName": mt.get("name"), "selector": mt.get("selector"),
                             "currentAverageValue": c.get("averageValue") or "0"})
    elif t == "Object" and m.get("object") is not None:
        o = m["object"]
        mt, c = o.get("metric") or {}, o.get("current") or {}
        out["object"] = _drop({"target": o.get("describedObject"), "metricName": mt.get("name"),
                               "currentValue": c.get("value") or "0", "selector": mt.get("selector"),
                               "averageValue": c.get("averageValue")})
    elif t == "External" and m.get("external") is not None:
        e = m["external"]
        mt, c = e.get("metric") or {}, e.get("current") or {}
        out["external"] = _drop({"metricName": mt.get("name"), "metricSelector": mt.get("selector"),
                                 "currentValue": c.get("value") or "0", "currentAverageValue": c.get("averageValue")})
    return out


def metric_status_from_v1(m: Obj) -> Obj:
    t = m.get("type", "")
    out: Obj = {"type": t}
    if t == "Resource" and m.get("resource") is not None:
        r = m["resource"]
        out["resource"] = {"name": r.get("name"), "current": _drop({
            "averageUtilization": r.get("currentAverageUtilization"), "averageValue": r.get("currentAverageValue")})}
    elif t == "ContainerResource" and m.get("containerResource") is not None:
        r = m["containerResource"]
        out["containerResource"] = {"name": r.get("name"), "container": r.get("container"), "current": _drop({
            "averageUtilization": r.get("currentAverageUtilization"), "averageValue": r.get("currentAverageValue")})}
    elif t == "Pods" and m.get("pods") is not None:
        p = m["pods"]
        out["pods"] = {"metric": _drop({"name": p.get("metricName"), "selector": p.get("selector")}),
                       "current": {"averageValue": p.get("currentAverageValue")}}
    elif t == "Object" and m.get("object") is not None:
        o = m["object"]
        out["object"] = {"describedObject": o.get("target"),
                         "metric": _drop({"name": o.get("metricName"), "selector": o.get("selector")}),
                         "current": _drop({"value": o.get("currentValue"), "averageValue": o.get("averageValue")})}
    elif t == "External" and m.get("external") is not None:
        e = m["external"]
        out["external"] = {"metric": _drop({"name": e.get("metricName"), "selector": e.get("metricSelector")}),
                           "current": _drop({"value": e.get("currentValue"), "averageValue": e.get("currentAverageValue")})}
    return out


def _dumps(v: Any) -> str:
    return json.dumps(v, separators=(",", ":"))


def to_v1(obj: Obj) -> Obj:
    """A stored autoscaling/v2 HorizontalPodAutoscaler as autoscaling/v1."""
    md = copy.deepcopy(obj.get("metadata") or {})
    ann = {k: v for k, v in (md.get("annotations") or {}).items() if k not in ROUND_TRIP}
    spec2, st2 = obj.get("spec") or {}, obj.get("status") or {}
    metrics = spec2.get("metrics") or []
    spec: Obj = {"scaleTargetRef": spec2.get("scaleTargetRef"), "maxReplicas": spec2.get("maxReplicas")}
    if spec2.get("minReplicas") is not None:
        spec["minReplicas"] = spec2["minReplicas"]
    cpu = next((m for m in metrics if _is_cpu_utilization(m)), None)
    if cpu is not None:
        spec["targetCPUUtilizationPercentage"] = cpu["resource"]["target"]["averageUtilization"]
    others = [metric_spec_to_v1(m) for m in metrics if not _is_cpu_utilization(m)]
    if others:
        ann[METRICS_ANN] = _dumps(others)
    current = st2.get("currentMetrics") or []
    if current:
        ann[CURRENT_METRICS_ANN] = _dumps([metric_status_to_v1(m) for m in current])
    if spec2.get("behavior") is not None:
        ann[BEHAVIOR_ANN] = _dumps(spec2["behavior"])
    if st2.get("conditions"):
        ann[CONDITIONS_ANN] = _dumps(st2["conditions"])
    if ann:
        md["annotations"] = ann
    else:
        md.pop("annotations", None)
    status: Obj = {k: st2[k] for k in ("observedGeneration", "lastScaleTime") if st2.get(k) is not None}
    status["currentReplicas"] = st2.get("currentReplicas", 0)
    status["desiredReplicas"] = st2.get("desiredReplicas", 0)
    for m in current:
        r = m.get("resource") or {}
        if m.get("type") == "Resource" and r.get("name") == "cpu" and (r.get("current") or {}).get("averageUtilization") is not None:
            status["currentCPUUtilizationPercentage"] = r["current"]["averageUtilization"]
    out: Obj = {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": md,
                "spec": {k: v for k, v in spec.items() if v is not None}}
    if obj.get("status") is not None:
        out["status"] = status
    return out


def from_v1(obj: Obj) -> Obj:
    """An autoscaling/v1 HorizontalPodAutoscaler as autoscaling/v2 (annotations folded back)."""
    md = copy.deepcopy(obj.get("metadata") or {})
    ann = dict(md.get("annotations") or {})
    spec1, st1 = obj.get("spec") or {}, obj.get("status") or {}
    spec: Obj = {"scaleTargetRef": spec1.get("scaleTargetRef"), "maxReplicas": spec1.get("maxReplicas")}
    if spec1.get("minReplicas") is not None:
        spec["minReplicas"] = spec1["minReplicas"]
    metrics: list[Obj] = []
    if ann.get(METRICS_ANN):
        metrics = [metric_spec_from_v1(m) for m in _loads_list(ann[METRICS_ANN])]
    if spec1.get("targetCPUUtilizationPercentage") is not None:
        metrics.append({"type": "Resource", "resource": {"name": "cpu", "target": {
            "type": "Utilization", "averageUtilization": spec1["targetCPUUtilizationPercentage"]}}})
    if not metrics:
        metrics = [{"type": "Resource", "resource": {"name": "cpu", "target": {
            "type": "Utilization", "averageUtilization": DEFAULT_CPU_UTILIZATION}}}]
    spec["metrics"] = metrics
    if ann.get(BEHAVIOR_ANN):
        try:
            spec["behavior"] = json.loads(ann[BEHAVIOR_ANN])
        except ValueError:
            pass
    status: Obj = {k: st1[k] for k in ("observedGeneration", "lastScaleTime", "currentReplicas", "desiredReplicas")
                   if st1.get(k) is not None}
    if ann.get(CURRENT_METRICS_ANN):
        status["currentMetrics"] = [metric_status_from_v1(m) for m in _loads_list(ann[CURRENT_METRICS_ANN])]
    elif st1.get("currentCPUUtilizationPercentage") is not None:
        status["currentMetrics"] = [{"type": "Resource", "resource": {"name": "cpu", "current": {
            "averageUtilization": st1["currentCPUUtilizationPercentage"]}}}]
    if ann.get(CONDITIONS_ANN):
        status["conditions"] = _loads_list(ann[CONDITIONS_ANN])
    for k in ROUND_TRIP:
        ann.pop(k, None)
    if ann:
        md["annotations"] = ann
    else:
        md.pop("annotations", None)
    out: Obj = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": md, "spec": spec}
    if obj.get("status") is not None:
        out["status"] = status
    return out


def _loads_list(text: str) -> list[Obj]:
    try:
        v = json.loads(text)
    except ValueError:
        return []
    return [x for x in v if isinstance(x, dict)] if isinstance(v, list) else []


class HorizontalPodAutoscalerStrategy(Strategy):
    """autoscaling/v2 (stored) and autoscaling/v1 (converted) HorizontalPodAutoscalers."""

    tracks_generation = True

    def set_defaults(self, obj: Obj) -> None:
        set_defaults_v2(obj)

    def to_version(self, info: ResourceInfo, obj: Obj) -> Obj:
        return to_v1(obj) if info.version == "v1" else obj

    def from_version(self, info: ResourceInfo, obj: Obj) -> Obj:
        return from_v1(obj) if info.version == "v1" else obj
