"""Synthetic usage of simulated nodes: within the documented bands of the request, stable per
pod, annotations override it, and CPU is a counter whose slope changes when the rate does."""

from __future__ import annotations

import pytest

from controlplane.agent.simulated_usage import CPU_ANNOTATION, MEMORY_ANNOTATION, UsageModel, cpu_rate, memory_bytes


def pod(uid="u1", ann=None, cpu="500m", mem="256Mi"):
    res = {"requests": {k: v for k, v in (("cpu", cpu), ("memory", mem)) if v}}
    return {"metadata": {"uid": uid, "name": "p", "annotations": ann or {}},
            "spec": {"containers": [{"name": "app", "resources": res}, {"name": "side"}]}}


@pytest.mark.parametrize("uid", [f"uid-{i}" for i in range(20)])
def test_model_within_bands(uid):
    p = pod(uid)
    app, side = p["spec"]["containers"]
    r = cpu_rate(p, app, 1000.0)
    assert 0.5 * 0.2 * 0.9 <= r <= 0.5 * 0.8 * 1.1
    assert 0.3 * 256 * 2**20 <= memory_bytes(p, app) <= 0.7 * 256 * 2**20
    assert cpu_rate(p, side, 1000.0) <= 0.1 * 0.8 * 1.1  # no request: 100m baseline
    assert cpu_rate(p, app, 1000.0) == cpu_rate(pod(uid), app, 1000.0)  # deterministic


@pytest.mark.parametrize("ann,app,side", [
    ({CPU_ANNOTATION: "800m"}, 0.8, 0.8),
    ({CPU_ANNOTATION: "app=2,side=50m"}, 2.0, 0.05),
])
def test_cpu_annotation_overrides(ann, app, side):
    p = pod(ann=ann)
    a, s = p["spec"]["containers"]
    assert cpu_rate(p, a, 5.0) == pytest.approx(app) and cpu_rate(p, s, 5.0) == pytest.approx(side)


def test_memory_annotation_overrides():
    p = pod(ann={MEMORY_ANNOTATION: "app=1Gi"})
    assert memory_bytes(p, p["spec"]["containers"][0]) == 2**30


def test_counter_integrates_rate_changes():
    m = UsageModel()
    assert m.cpu_seconds("k", 0.5, 100.0, start=90.0) == pytest.approx(5.0)  # 10 s at 0.5 before the first read
    assert m.cpu_seconds("k", 2.0, 110.0, start=90.0) == pytest.approx(10.0)  # 10 s more at 0.5, then rate 2
    assert m.cpu_seconds("k", 2.0, 115.0, start=90.0) == pytest.approx(20.0)  # 5 s at 2
    assert m.cpu_seconds("k", 2.0, 114.0, start=90.0) == pytest.approx(20.0)  # time never goes back
    m.forget(set())
    assert len(m) == 0


@pytest.mark.parametrize("ann", [{}, {CPU_ANNOTATION: "app=2,side=50m", MEMORY_ANNOTATION: "1Gi"}])
def test_profile_matches_the_model(ann):
    from controlplane.agent.simulated_usage import profile
    p = pod("u9", ann=ann)
    for c, spec in zip(profile(p), p["spec"]["containers"]):
        assert c.cpu(1234.5) == pytest.approx(cpu_rate(p, spec, 1234.5))
        assert c.memory == memory_bytes(p, spec)


def test_the_slim_pod_keeps_what_the_simulated_nodes_read() -> None:
    from controlplane.agent.simulated import slim_pod
    from controlplane.agent.simulated_usage import profile

    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "p", "namespace": "n", "uid": "u1", "resourceVersion": "9",
                        "labels": {"app": "a"}, "managedFields": [{"manager": "x"}],
                        "annotations": {"sim.controlplane.io/cpu-usage": "app=800m", "other": "x"}},
           "spec": {"nodeName": "sim-node-1", "serviceAccountName": "default", "volumes": [{"name": "v"}],
                    "containers": [{"name": "app", "image": "pause", "volumeMounts": [{"name": "v"}],
                                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]},
           "status": {"phase": "Running", "startTime": "2026-12-06T00:00:00Z", "conditions": [{"type": "Ready"}]}}
    slim = slim_pod(pod)
    assert slim == {"metadata": {"name": "p", "namespace": "n", "uid": "u1", "resourceVersion": "9",
                                 "annotations": {"sim.controlplane.io/cpu-usage": "app=800m"}},
                    "spec": {"nodeName": "sim-node-1", "containers": [
                        {"name": "app", "image": "pause", "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]},
                    "status": {"phase": "Running", "startTime": "2026-12-06T00:00:00Z"}}
    assert repr(profile(slim)) == repr(profile(pod))
