"""Health rules (controlplane/gitops/health.py): kstatus for built-in kinds and Ready
conditions, and CEL expressions per kind, table-driven."""

from __future__ import annotations

import asyncio

import pytest

from controlplane.gitops import health
from controlplane.gitops.health import CURRENT, FAILED, IN_PROGRESS, NOT_FOUND


def obj(api_version: str, kind: str, spec=None, status=None, generation: int = 1, **md) -> dict:
    o = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "x", "namespace": "ns", "generation": generation, **md},
         "spec": spec or {}}
    if status is not None:
        o["status"] = status
    return o


def deploy(want=2, **st) -> dict:
    return obj("apps/v1", "Deployment", {"replicas": want}, {"observedGeneration": 1, **st})


def cond(t: str, s: str, **kw) -> dict:
    return {"type": t, "status": s, **kw}


CASES = [
    ("deployment rolled out", deploy(want=2, updatedReplicas=2, availableReplicas=2, readyReplicas=2, replicas=2), CURRENT),
    ("deployment not observed", obj("apps/v1", "Deployment", {"replicas": 1}, {}), IN_PROGRESS),
    ("deployment old generation", obj("apps/v1", "Deployment", {"replicas": 1}, {"observedGeneration": 1}, generation=2), IN_PROGRESS),
    ("deployment updating", deploy(updatedReplicas=1, availableReplicas=2, readyReplicas=2, replicas=3), IN_PROGRESS),
    ("deployment unavailable", deploy(updatedReplicas=2, availableReplicas=1, readyReplicas=1, replicas=2), IN_PROGRESS),
    ("deployment deadline", deploy(conditions=[cond("Progressing", "False", reason="ProgressDeadlineExceeded")]), FAILED),
    ("statefulset ready", obj("apps/v1", "StatefulSet", {"replicas": 2}, {"observedGeneration": 1, "readyReplicas": 2,
                                                                          "updatedReplicas": 2, "currentReplicas": 2}), CURRENT),
    ("statefulset not ready", obj("apps/v1", "StatefulSet", {"replicas": 2}, {"observedGeneration": 1, "readyReplicas": 1}), IN_PROGRESS),
    ("daemonset updated", obj("apps/v1", "DaemonSet", {}, {"observedGeneration": 1, "desiredNumberScheduled": 3,
                                                         "updatedNumberScheduled": 3, "numberAvailable": 3, "numberReady": 3}), CURRENT),
    ("daemonset updating", obj("apps/v1", "DaemonSet", {}, {"observedGeneration": 1, "desiredNumberScheduled": 3,
                                                          "updatedNumberScheduled": 2, "numberAvailable": 3, "numberReady": 3}), IN_PROGRESS),
    ("job complete", obj("batch/v1", "Job", {}, {"conditions": [cond("Complete", "True")]}), CURRENT),
    ("job failed", obj("batch/v1", "Job", {}, {"conditions": [cond("Failed", "True", reason="BackoffLimitExceeded")]}), FAILED),
    ("job running", obj("batch/v1", "Job", {}, {"active": 1}), IN_PROGRESS),
    ("crd established", obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", {}, {"conditions": [cond("Established", "True")]}), CURRENT),
    ("crd pending", obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", {}, {}), IN_PROGRESS),
    ("pvc bound", obj("v1", "PersistentVolumeClaim", {}, {"phase": "Bound"}), CURRENT),
    ("pvc pending", obj("v1", "PersistentVolumeClaim", {}, {"phase": "Pending"}), IN_PROGRESS),
    ("pod ready", obj("v1", "Pod", {}, {"phase": "Running", "conditions": [cond("Ready", "True")]}), CURRENT),
    ("pod failed", obj("v1", "Pod", {}, {"phase": "Failed"}), FAILED),
    ("configmap: no status is current", obj("v1", "ConfigMap"), CURRENT),
    ("custom resource ready", obj("x.io/v1", "Thing", {}, {"conditions": [cond("Ready", "True", observedGeneration=1)]}), CURRENT),
    ("custom resource not ready", obj("x.io/v1", "Thing", {}, {"conditions": [cond("Ready", "False", message="waiting")]}), IN_PROGRESS),
    ("custom resource ready for an old generation", obj("x.io/v1", "Thing", {}, {"conditions": [
        cond("Ready", "True", observedGeneration=1)]}, generation=2), IN_PROGRESS),
    ("custom resource stalled", obj("x.io/v1", "Thing", {}, {"conditions": [cond("Stalled", "True")]}), FAILED),
    ("being deleted", obj("v1", "ConfigMap", deletionTimestamp="2026-01-01T00:00:00Z"), IN_PROGRESS),
]


@pytest.mark.parametrize("o,want", [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES])
def test_kstatus(o, want):
    assert asyncio.run(health.compute(o)).status == want


def test_not_found():
    assert asyncio.run(health.compute(None)).status == NOT_FOUND


@pytest.mark.parametrize("endpoints,want", [
    (None, IN_PROGRESS), ({"subsets": []}, IN_PROGRESS),
    ({"subsets": [{"addresses": [{"ip": "10.0.0.1"}]}]}, CURRENT)], ids=["no endpoints", "empty", "one ready"])
def test_service_needs_ready_endpoints(endpoints, want):
    async def lookup(ns: str, name: str):
        assert (ns, name) == ("ns", "x")
        return endpoints
    svc = obj("v1", "Service", {"selector": {"app": "x"}})
    assert asyncio.run(health.compute(svc, endpoints=lookup)).status == want
    headless = obj("v1", "Service", {})  # no selector: nothing to wait for
    assert asyncio.run(health.compute(headless, endpoints=lookup)).status == CURRENT


RULE = {"apiVersion": "x.io/v1", "kind": "Thing", "current": "status.phase == 'Done'",
        "failed": "has(status.error) && status.error != ''", "inProgress": "status.phase == 'Working'"}


@pytest.mark.parametrize("status,want", [
    ({"phase": "Done"}, CURRENT), ({"phase": "Working"}, IN_PROGRESS), ({"phase": "Done", "error": "boom"}, FAILED),
    ({"phase": "Other"}, IN_PROGRESS)], ids=["current", "in progress", "failed wins", "neither"])
def test_cel_rule(status, want):
    assert asyncio.run(health.compute(obj("x.io/v1", "Thing", {}, status), exprs=[RULE])).status == want


def test_cel_errors_are_failures_with_the_message():
    h = asyncio.run(health.compute(obj("x.io/v1", "Thing", {}, {}), exprs=[{**RULE, "failed": ""}]))
    assert h.status == FAILED and "phase" in h.message
    with pytest.raises(health.CelError):
        health.compile_expr("status.(")
    with pytest.raises(health.CelError):
        health.eval_bool("1 + 1", {})


def test_cel_sees_self_and_top_level_fields():
    o = obj("v1", "ConfigMap", {}, None)
    o["data"] = {"k": "v"}
    assert health.eval_bool("data.k == 'v' && self.metadata.name == 'x'", o)
