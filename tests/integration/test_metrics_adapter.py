"""Custom and external metrics end to end: ``controlplane up --prometheus`` runs the real
Prometheus and the metrics adapter (prometheus-adapter's role) behind the APIServices of
``custom.metrics.k8s.io`` and ``external.metrics.k8s.io``, with the shipped rules
(``manifests/prometheus-adapter/config.yaml``). With the real kubectl, through the
aggregation layer:

- discovery lists ``pods/cpu_usage`` (from the agent's ``/metrics/cadvisor``, scraped by
  Prometheus every second); ``pods/*/cpu_usage`` of a busybox Deployment spinning under a
  200m limit reads 100-260m (v1beta2 and v1beta1 shapes), one pod by name too;
- an ``autoscaling/v2`` HPA on that Pods metric (average 50m) scales the Deployment from 1 to
  its maximum, 2, and its status shows the Pods metric's current average; the namespace's
  own ``cpu_usage`` (both path forms) drives an HPA's Object metric (value 100m) on a second
  Deployment to its maximum too, with an External metric (``pods_by_phase``) beside it;
- the external metric ``pods_by_phase`` (``kube_pod_status_phase``) counts the Running pods;
- bad input: an unknown metric and an object without a sample are 404 ``Status`` answers with
  prometheus-adapter's message, a selector that does not parse is 400, a write is 405.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest

from controlplane.machinery.quantity import parse_quantity
from tests.fixtures.agent import HAVE_RUNC
from tests.fixtures.poll import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.runc, pytest.mark.timeout(300)]

SPIN = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: spin}
spec:
  replicas: 1
  selector: {matchLabels: {app: spin}}
  template:
    metadata: {labels: {app: spin}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: c
        image: busybox
        command: ["sh", "-c", "while :; do :; done"]
        resources: {requests: {cpu: 50m}, limits: {cpu: 200m}}
"""

# an Object metric (the namespace's own cpu_usage: every spinning pod of it, against 100m) and an
# External one (the namespace's Running pods, against 1)
OBJECT_HPA = """
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: spin2}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: spin2}
  minReplicas: 1
  maxReplicas: 2
  metrics:
  - type: Object
    object:
      describedObject: {apiVersion: v1, kind: Namespace, name: default}
      metric: {name: cpu_usage}
      target: {type: Value, value: 100m}
  - type: External
    external:
      metric: {name: pods_by_phase, selector: {matchLabels: {phase: Running}}}
      target: {type: Value, value: "1"}
"""

HPA = """
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: spin}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: spin}
  minReplicas: 1
  maxReplicas: 2
  metrics:
  - type: Pods
    pods:
      metric: {name: cpu_usage}
      target: {type: AverageValue, averageValue: 50m}
"""


def test_custom_and_external_metrics_from_prometheus_drive_an_hpa(up_factory, tmp_path: Path) -> None:
    if not HAVE_RUNC:
        pytest.fail("needs root and runc (up runs a node agent)")
    inst = up_factory(
        "data", node_name=f"ma-{uuid.uuid4().hex[:6]}",
        args=["--apiserver-workers", "1", "--prometheus", "--dashboard-port", "0",
              "--prometheus-scrape-interval", "1s", "--metrics-adapter-relist-interval", "2s"])
    assert "metrics-adapter" in inst.ready_line["metrics"]
    kubectl = inst.kubectl(tmp_path / "kubectl-cache")

    def raw(path: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return kubectl("get", "--raw", path, check=check)

    kubectl("apply", "-f", "-", input=SPIN)
    kubectl("apply", "-f", "-", input=SPIN.replace("spin", "spin2"))
    # the APIServices are Available, and discovery shows the pod metrics once scraped
    for name in ("v1beta2.custom.metrics.k8s.io", "v1beta1.custom.metrics.k8s.io", "v1beta1.external.metrics.k8s.io"):
        wait_for(f"{name} Available", lambda n=name: any(
            c["type"] == "Available" and c["status"] == "True"
            for c in json.loads(kubectl("get", "apiservice", n, "-o", "json").stdout)["status"].get("conditions", [])), 60)

    def listed():
        names = {r["name"] for r in json.loads(raw("/apis/custom.metrics.k8s.io/v1beta2").stdout)["resources"]}
        return names if {"pods/cpu_usage", "namespaces/cpu_usage", "pods/memory_working_set_bytes"} <= names else None
    wait_for("pods/cpu_usage in discovery", listed, 90)

    def spinning():
        body = json.loads(raw("/apis/custom.metrics.k8s.io/v1beta2/namespaces/default/pods/*/cpu_usage"
                              "?labelSelector=app%3Dspin").stdout)
        items = body["items"]
        return body if items and parse_quantity(items[0]["value"]) * 1000 >= 100 else None
    body = wait_for("the spinning pod's cpu_usage", spinning, 60)
    assert body["kind"] == "MetricValueList" and body["apiVersion"] == "custom.metrics.k8s.io/v1beta2"
    item = body["items"][0]
    pod = item["describedObject"]["name"]
    assert item["describedObject"] == {"kind": "Pod", "namespace": "default", "name": pod, "apiVersion": "v1"}
    assert item["metric"]["name"] == "cpu_usage"
    assert 100 <= parse_quantity(item["value"]) * 1000 <= 260, item  # a 200m limit, as the cgroup ran it
    one = json.loads(raw(f"/apis/custom.metrics.k8s.io/v1beta1/namespaces/default/pods/{pod}/cpu_usage").stdout)
    assert one["apiVersion"] == "custom.metrics.k8s.io/v1beta1" and one["items"][0]["metricName"] == "cpu_usage"

    # the namespace itself, in both forms (namespaces/NS/metrics/M and the cluster-scoped one)
    for path in ("/apis/custom.metrics.k8s.io/v1beta2/namespaces/default/metrics/cpu_usage",
                 "/apis/custom.metrics.k8s.io/v1beta2/namespaces/default/cpu_usage"):
        ns_items = json.loads(raw(path).stdout)["items"]
        assert [(i["describedObject"]["kind"], i["describedObject"]["name"]) for i in ns_items] == \
            [("Namespace", "default")], ns_items
        assert parse_quantity(ns_items[0]["value"]) * 1000 >= 100, ns_items

    # external: the cluster-state series by phase
    ext = json.loads(raw("/apis/external.metrics.k8s.io/v1beta1/namespaces/default/pods_by_phase"
                         "?labelSelector=phase%3DRunning").stdout)
    assert ext["kind"] == "ExternalMetricValueList"
    assert [(i["metricLabels"], parse_quantity(i["value"]) >= 1) for i in ext["items"]] == [({"phase": "Running"}, True)]

    # bad input: Kubernetes' answers, nothing else changes
    for path, code, text in [
        ("/apis/custom.metrics.k8s.io/v1beta2/namespaces/default/pods/*/no_such_metric",
         404, "the server could not find the metric no_such_metric for pods"),
        ("/apis/custom.metrics.k8s.io/v1beta2/namespaces/default/pods/ghost/cpu_usage",
         404, "the server could not find the metric cpu_usage for pods ghost"),
        ("/apis/custom.metrics.k8s.io/v1beta2/namespaces/default/pods/*/cpu_usage?labelSelector=a%20in%20(",
         400, "unable to parse labelSelector"),
        ("/apis/custom.metrics.k8s.io/v1beta2/namespaces/default/pods/*/cpu_usage"
         "?metricLabelSelector=app.kubernetes.io%2Fname%3Dweb", 400, "is not a Prometheus label name"),
    ]:
        res = raw(path, check=False)
        assert res.returncode != 0 and text in res.stderr, (path, res.stderr)
    res = kubectl("create", "--raw", "/apis/custom.metrics.k8s.io/v1beta2/namespaces/default/pods/x/cpu_usage",
                  "-f", "-", input="{}", check=False)
    assert res.returncode != 0 and ("MethodNotAllowed" in res.stderr or "not allow" in res.stderr), res.stderr

    # the HPA on the Pods metric (~200m per pod against an average of 50m) and the one on
    # the namespace's Object metric (~400m against 100m): both to their maximum
    kubectl("apply", "-f", "-", input=HPA)
    kubectl("apply", "-f", "-", input=OBJECT_HPA)

    def scaled(name: str):
        hpa = json.loads(kubectl("get", "hpa", name, "-o", "json").stdout)
        st = hpa.get("status") or {}
        return hpa if st.get("desiredReplicas") == 2 and st.get("currentMetrics") else None
    hpa = wait_for("the Pods HPA scaling to 2 on cpu_usage", lambda: scaled("spin"), 90)
    cur = hpa["status"]["currentMetrics"][0]
    assert cur["type"] == "Pods" and cur["pods"]["metric"]["name"] == "cpu_usage", cur
    assert parse_quantity(cur["pods"]["current"]["averageValue"]) * 1000 >= 100, cur
    active = {c["type"]: c for c in hpa["status"]["conditions"]}["ScalingActive"]
    assert active["status"] == "True", hpa["status"]["conditions"]
    hpa = wait_for("the Object HPA scaling to 2 on the namespace's cpu_usage", lambda: scaled("spin2"), 60)
    cur = hpa["status"]["currentMetrics"][0]
    assert cur["type"] == "Object" and cur["object"]["describedObject"]["kind"] == "Namespace", cur
    assert parse_quantity(cur["object"]["current"]["value"]) * 1000 >= 200, cur
    ext_cur = hpa["status"]["currentMetrics"][1]
    assert ext_cur["type"] == "External" and ext_cur["external"]["metric"]["name"] == "pods_by_phase", ext_cur
    assert parse_quantity(ext_cur["external"]["current"]["value"]) >= 2, ext_cur  # spin and spin2 at least
    for name in ("spin", "spin2"):
        wait_for(f"the Deployment {name} at 2", lambda n=name: json.loads(
            kubectl("get", "deploy", n, "-o", "json").stdout)["spec"]["replicas"] == 2, 30)
    kubectl("delete", "hpa,deploy", "spin", "spin2", "--wait=false")  # the spinning stops before up does
