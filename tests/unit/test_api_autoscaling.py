"""The apiserver side of autoscaling and aggregation, pure parts: HorizontalPodAutoscaler v2
defaults, v1 <-> v2 conversion (Kubernetes' round-trip annotations), validation messages,
``kubectl get hpa`` targets, APIService validation and columns, the merged discovery and the
backend resolution of APIServices."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from controlplane.apiserver.aggregation.apiservices import group, group_list
from controlplane.apiserver.aggregation.resolve import ResolveError, Resolver
from controlplane.apiserver.discovery.registry import ResourceInfo
from controlplane.apiserver.meta.names import Errors
from controlplane.apiserver.printing.autoscaling import apiservice_row, hpa_targets
from controlplane.apiserver.strategy.horizontalpodautoscaler import (
    BEHAVIOR_ANN, CONDITIONS_ANN, CURRENT_METRICS_ANN, METRICS_ANN, from_v1, set_defaults_v2, to_v1,
)
from controlplane.apiserver.validation.apiregistration import apiservice
from controlplane.apiserver.validation.autoscaling import horizontal_pod_autoscaler
from controlplane.storage.interface import object_key

REF = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}
CPU50 = {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}
MEM = {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "100Mi"}}}


def v2(metrics=None, behavior=None, status=None, **spec):
    o = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
         "metadata": {"name": "h", "namespace": "ns", "annotations": {"keep": "me"}},
         "spec": {"scaleTargetRef": REF, "minReplicas": 1, "maxReplicas": 4, **spec}}
    if metrics is not None:
        o["spec"]["metrics"] = metrics
    if behavior is not None:
        o["spec"]["behavior"] = behavior
    if status is not None:
        o["status"] = status
    return o


def test_v2_defaults():
    o = {"spec": {"scaleTargetRef": REF, "maxReplicas": 3, "behavior": {"scaleDown": {"stabilizationWindowSeconds": 5}}}}
    set_defaults_v2(o)
    assert o["spec"]["minReplicas"] == 1
    assert o["spec"]["metrics"] == [{"type": "Resource", "resource": {"name": "cpu", "target": {
        "type": "Utilization", "averageUtilization": 80}}}]
    assert o["spec"]["behavior"]["scaleUp"]["policies"][0] == {"type": "Pods", "value": 4, "periodSeconds": 15}
    assert o["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 5


def test_v2_to_v1_cpu_only():
    status = {"currentReplicas": 2, "desiredReplicas": 3, "currentMetrics": [
        {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 90, "averageValue": "450m"}}}],
        "conditions": [{"type": "AbleToScale", "status": "True", "reason": "SucceededRescale", "message": "m"}]}
    o = to_v1(v2([CPU50], status=status))
    assert o["apiVersion"] == "autoscaling/v1"
    assert o["spec"] == {"scaleTargetRef": REF, "maxReplicas": 4, "minReplicas": 1, "targetCPUUtilizationPercentage": 50}
    assert o["status"]["currentCPUUtilizationPercentage"] == 90 and o["status"]["desiredReplicas"] == 3
    ann = o["metadata"]["annotations"]
    assert METRICS_ANN not in ann and ann["keep"] == "me"
    assert json.loads(ann[CURRENT_METRICS_ANN]) == [{"type": "Resource", "resource": {
        "name": "cpu", "currentAverageUtilization": 90, "currentAverageValue": "450m"}}]
    assert json.loads(ann[CONDITIONS_ANN])[0]["reason"] == "SucceededRescale"


@pytest.mark.parametrize("metrics,behavior", [
    ([CPU50], None),
    ([CPU50, MEM], None),
    ([MEM], {"scaleDown": {"stabilizationWindowSeconds": 10, "selectPolicy": "Max",
                           "policies": [{"type": "Pods", "value": 1, "periodSeconds": 15}]}}),
    ([{"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "10"}}},
      {"type": "Object", "object": {"describedObject": {"apiVersion": "v1", "kind": "Service", "name": "s"},
                                    "metric": {"name": "rps"}, "target": {"type": "Value", "value": "100"}}},
      {"type": "External", "external": {"metric": {"name": "queue", "selector": {"matchLabels": {"q": "a"}}},
                                        "target": {"type": "AverageValue", "averageValue": "30"}}},
      {"type": "ContainerResource", "containerResource": {"name": "cpu", "container": "app",
                                                          "target": {"type": "Utilization", "averageUtilization": 60}}}],
     None),
])
def test_v2_v1_round_trip_is_lossless(metrics, behavior):
    original = v2(metrics, behavior)
    back = from_v1(to_v1(original))
    # v1 keeps the CPU utilization target in its own field, the others in the annotation (after it)
    want = sorted(json.dumps(m, sort_keys=True) for m in metrics)
    assert sorted(json.dumps(m, sort_keys=True) for m in back["spec"]["metrics"]) == want
    assert back["spec"].get("behavior") == behavior
    assert back["metadata"]["annotations"] == {"keep": "me"}
    if behavior is not None:
        assert json.loads(to_v1(original)["metadata"]["annotations"][BEHAVIOR_ANN]) == behavior


def test_v1_without_target_gets_the_default_cpu_metric():
    o = from_v1({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h"},
                 "spec": {"scaleTargetRef": REF, "maxReplicas": 5}})
    assert o["spec"]["metrics"] == [{"type": "Resource", "resource": {"name": "cpu", "target": {
        "type": "Utilization", "averageUtilization": 80}}}]
    assert o["apiVersion"] == "autoscaling/v2" and "minReplicas" not in o["spec"]


def _causes(obj, fn):
    errs = Errors()
    fn(obj, errs, False, {})
    return [(c["field"], c["message"]) for c in errs.causes]


@pytest.mark.parametrize("spec,want", [
    ({"minReplicas": 5, "maxReplicas": 2},
     [("spec.maxReplicas", "Invalid value: 2: must be greater than or equal to `minReplicas`")]),
    ({"minReplicas": 0}, [("spec.minReplicas", "Invalid value: 0: must be greater than or equal to 1")]),
    ({"maxReplicas": 0}, [("spec.maxReplicas", "Invalid value: 0: must be greater than 0")]),
    ({"scaleTargetRef": {"apiVersion": "apps/v1"}}, [("spec.scaleTargetRef.kind", "Required value"),
                                                      ("spec.scaleTargetRef.name", "Required value")]),
    ({"metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization"}}}]},
     [("spec.metrics[0].resource.target.averageUtilization",
       "Required value: must set either a target raw value or a target utilization")]),
    ({"metrics": [{"type": "Resource"}]},
     [("spec.metrics[0].resource", "Required value: must populate information for the given metric source")]),
    ({"metrics": [{"type": "Pods", "pods": {"metric": {"name": "x"}, "target": {"type": "AverageValue", "averageValue": "-1"}}}]},
     [("spec.metrics[0].pods.target.averageValue", 'Invalid value: "-1": must be positive')]),
    ({"behavior": {"scaleUp": {"stabilizationWindowSeconds": 4000, "policies": [
        {"type": "Pods", "value": 0, "periodSeconds": 2000}]}}},
     [("spec.behavior.scaleUp.stabilizationWindowSeconds", "Invalid value: 4000: must be less than or equal to 3600"),
      ("spec.behavior.scaleUp.policies[0].value", "Invalid value: 0: must be greater than zero"),
      ("spec.behavior.scaleUp.policies[0].periodSeconds", "Invalid value: 2000: must be less than or equal to 1800")]),
    ({"minReplicas": 1, "maxReplicas": 3}, []),
])
def test_hpa_validation(spec, want):
    obj = v2([CPU50])
    obj["spec"].update(spec)
    assert _causes(obj, horizontal_pod_autoscaler) == want


@pytest.mark.parametrize("specs,statuses,text", [
    ([CPU50], [], "cpu: <unknown>/50%"),
    ([CPU50], [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 120}}}], "cpu: 120%/50%"),
    ([MEM], [{"type": "Resource", "resource": {"name": "memory", "current": {"averageValue": "90Mi"}}}], "memory: 90Mi/100Mi"),
    ([CPU50, MEM, CPU50], [{"type": ""}], "cpu: <unknown>/50%, memory: <unknown>/100Mi + 1 more..."),
    ([], [], "<none>"),
])
def test_hpa_targets_column(specs, statuses, text):
    assert hpa_targets(specs, statuses) == text


def aps(name="v1beta1.metrics.k8s.io", **spec):
    base = {"group": "metrics.k8s.io", "version": "v1beta1", "groupPriorityMinimum": 100, "versionPriority": 100,
            "service": {"namespace": "kube-system", "name": "metrics-server", "port": 443}}
    base.update(spec)
    return {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": {"name": name},
            "spec": {k: v for k, v in base.items() if v is not None}}


@pytest.mark.parametrize("obj,want", [
    (aps(), []),
    (aps("metrics"), [("metadata.name", 'Invalid value: "metrics": must be `spec.version+"."+spec.group`: "v1beta1.metrics.k8s.io"')]),
    (aps(groupPriorityMinimum=0), [("spec.groupPriorityMinimum", "Invalid value: 0: must be positive and less than 20000")]),
    (aps(insecureSkipTLSVerify=True, caBundle="Zm9v"),
     [("spec.insecureSkipTLSVerify", "Invalid value: true: may not be true if caBundle is present")]),
    (aps(service=None, insecureSkipTLSVerify=True),
     [("spec.insecureSkipTLSVerify", "Invalid value: true: local APIServices may not have insecureSkipTLSVerify")]),
    (aps(service={"port": 70000}), [("spec.service.namespace", "Required value"), ("spec.service.name", "Required value"),
                                   ("spec.service.port", "Invalid value: 70000: port is not valid: must be between 1 and 65535, inclusive")]),
])
def test_apiservice_validation(obj, want):
    assert _causes(obj, apiservice) == want


def test_apiservice_columns():
    a = aps()
    a["status"] = {"conditions": [{"type": "Available", "status": "False", "reason": "MissingEndpoints"}]}
    assert apiservice_row(a, datetime.now(timezone.utc))[1:3] == ["kube-system/metrics-server", "False (MissingEndpoints)"]
    local = aps(service=None)
    assert apiservice_row(local, datetime.now(timezone.utc))[1:3] == ["Local", "Unknown"]


def test_discovery_merges_aggregated_groups_by_priority():
    local_doc = {"groups": [{"name": "apps", "versions": [], "preferredVersion": {}}]}
    items = [aps(), aps("v1.custom.metrics.k8s.io", group="custom.metrics.k8s.io", version="v1", groupPriorityMinimum=200),
             aps("v2.custom.metrics.k8s.io", group="custom.metrics.k8s.io", version="v2", versionPriority=200),
             aps("v1.apps", group="apps", version="v1", service=None)]
    doc = group_list(local_doc, items, {"apps": ["v1"]})
    assert [g["name"] for g in doc["groups"]] == ["apps", "custom.metrics.k8s.io", "metrics.k8s.io"]
    cm = doc["groups"][1]
    assert [v["version"] for v in cm["versions"]] == ["v2", "v1"] and cm["preferredVersion"]["version"] == "v2"
    assert group("metrics.k8s.io", items, {})["kind"] == "APIGroup"
    assert group("apps", items, {"apps": ["v1"]}) is None  # local APIServices do not take a group over


class FakeCaches:
    def __init__(self, objs):
        self.objs = objs

    def if_ready(self, info):
        return self

    def get(self, key):
        class E:
            raw = b""
        obj = self.objs.get(key)
        if obj is None:
            return None
        e = E()
        e.raw = json.dumps(obj).encode()
        return e


class FakeRegistry:
    def get(self, group, version, plural):
        return ResourceInfo("", "v1", plural.title(), plural, plural, True)


def _resolver(objs):
    keyed = {object_key("core", plural, "kube-system", "metrics-server"): o for plural, o in objs.items()}
    return Resolver(FakeCaches(keyed), FakeRegistry())  # type: ignore[arg-type]


SVC = {"spec": {"ports": [{"name": "https", "port": 443, "targetPort": 4443}]}}


@pytest.mark.parametrize("objs,reason", [
    ({}, "ServiceNotFound"),
    ({"services": {"spec": {"ports": [{"port": 80}]}}}, "ServicePortError"),
    ({"services": SVC}, "EndpointsNotFound"),
    ({"services": SVC, "endpoints": {"subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"name": "other", "port": 1}]}]}},
     "MissingEndpoints"),
])
def test_resolution_failures(objs, reason):
    with pytest.raises(ResolveError) as e:
        _resolver(objs).url(aps())
    assert e.value.reason == reason


def test_resolution_endpoint_and_external_name():
    eps = {"subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"name": "https", "port": 4443}]}]}
    assert _resolver({"services": SVC, "endpoints": eps}).url(aps()) == "https://127.0.0.1:4443"
    ext = {"spec": {"type": "ExternalName", "externalName": "localhost"}}
    assert _resolver({"services": ext}).url(aps()) == "https://localhost:443"
