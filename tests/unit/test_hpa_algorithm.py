"""The HorizontalPodAutoscaler's algorithm, table-driven with a fake clock (cases follow
Kubernetes' replica_calculator_test.go and horizontal_test.go): the replica calculator
(utilization, average value, tolerance, unready / missing / ignored pods, CPU initialization,
missing requests, container metrics), the normalization (stabilization windows, scale-up limit,
behavior policies with Max/Min/Disabled and periods), and conditions."""

from __future__ import annotations

import pytest

from controlplane.controllers import hpanormalize as hn
from controlplane.controllers import replicacalculator as rc
from controlplane.machinery.timestamps import rfc3339

NOW = 1_700_000_000.0
UNREADY = {"ready": "False", "started": NOW - 120, "transition": NOW - 120}  # never ready since it started


def pod(name, cpu="1000m", mem=None, phase="Running", ready="True", started=NOW - 3600, transition=NOW - 3000,
        deleting=False, containers=None):
    req = {"cpu": cpu} if cpu else {}
    if mem:
        req["memory"] = mem
    cs = containers or [{"name": "c", "resources": {"requests": req}}]
    p = {"metadata": {"name": name}, "spec": {"containers": cs},
         "status": {"phase": phase, "startTime": rfc3339(started) if started else None,
                    "conditions": [{"type": "Ready", "status": ready, "lastTransitionTime": rfc3339(transition)}]
                    if ready else []}}
    if deleting:
        p["metadata"]["deletionTimestamp"] = rfc3339(NOW)
    return p


def pods(n, **kw):
    return [pod(f"p{i}", **kw) for i in range(n)]


def metrics(values, names=None, ts=NOW - 5, window=15.0):
    names = names or [f"p{i}" for i in range(len(values))]
    return {n: rc.PodMetric(v, ts, window) for n, v in zip(names, values) if v is not None}


@pytest.mark.parametrize("case,current,target,pod_list,values,want", [
    ("scale up", 3, 30, pods(3), [300, 500, 700], (5, 50, 500)),
    ("scale down", 5, 50, pods(5), [100, 300, 500, 250, 250], (3, 28, 280)),
    ("within tolerance", 3, 50, pods(3), [540, 540, 540], (3, 54, 540)),
    ("unready on scale up counts as 0", 3, 30,
     [pod("p0", **UNREADY), pod("p1"), pod("p2")], [300, 500, 700], (4, 60, 600)),
    ("unready ignored on scale down", 5, 50,
     pods(3) + [pod("p3", **UNREADY), pod("p4", **UNREADY)], [100, 300, 500, 250, 250], (2, 30, 300)),
    ("missing on scale down count as 100%", 4, 50, pods(4), [100, 100, 100, None], (3, 10, 100)),
    ("missing on scale up count as 0", 4, 50, pods(4), [900, 900, 900, None], (6, 90, 900)),
    ("missing flips the direction: keep", 2, 100, pods(2), [1100, None], (2, 110, 1100)),
    ("deleting and failed pods ignored", 3, 50,
     pods(2) + [pod("p2", deleting=True), pod("p3", phase="Failed")], [1000, 1000, 10, 10], (4, 100, 1000)),
    ("pending pods are unready: 0 on scale up, lands in tolerance", 2, 50, [pod("p0"), pod("p1", phase="Pending")],
     [1000, None], (2, 100, 1000)),
    ("within 5 min of start, a metric older than transition+window is unready", 3, 50,
     [pod("p0"), pod("p1"), pod("p2", started=NOW - 60, transition=NOW - 10)], [1000, 1000, 1000], (4, 100, 1000)),
    ("once ready after the initialization period, a not-ready pod still counts", 2, 50,
     [pod("p0"), pod("p1", ready="False")], [1000, 1000], (4, 100, 1000)),
    ("after the initialization period a once-ready pod counts", 2, 50,
     [pod("p0"), pod("p1", ready="False", started=NOW - 3600, transition=NOW - 3000)], [1000, 1000], (4, 100, 1000)),
])
def test_resource_replicas(case, current, target, pod_list, values, want):
    assert rc.resource_replicas(current, target, "cpu", pod_list, metrics(values), NOW) == want


def test_resource_replicas_memory_ignores_readiness():
    ps = [pod("p0", cpu=None, mem="100Mi"), pod("p1", cpu=None, mem="100Mi", ready="False")]
    m = metrics([100 * 2**20 * 1000, 100 * 2**20 * 1000])  # milli-bytes: 100 % each
    assert rc.resource_replicas(2, 50, "memory", ps, m, NOW)[0] == 4


def test_container_resource_uses_only_that_container():
    cs = [{"name": "app", "resources": {"requests": {"cpu": "500m"}}}, {"name": "side", "resources": {}}]
    ps = [pod("p0", containers=cs), pod("p1", containers=cs)]
    assert rc.resource_replicas(2, 50, "cpu", ps, metrics([500, 500]), NOW, container="app")[:2] == (4, 100)
    with pytest.raises(rc.CalcError, match="missing request for cpu in container side of Pod p0"):
        rc.resource_replicas(2, 50, "cpu", ps, metrics([500, 500]), NOW)


@pytest.mark.parametrize("pod_list,values,msg", [
    ([], [], "no pods returned by selector while calculating replica count"),
    (pods(2, **UNREADY), [100, 100], "did not receive metrics for targeted pods (pods might be unready)"),
    ([pod("p0", cpu=None)], [100], "missing request for cpu in container c of Pod p0"),
])
def test_resource_replicas_errors(pod_list, values, msg):
    with pytest.raises(rc.CalcError) as e:
        rc.resource_replicas(1, 50, "cpu", pod_list, metrics(values), NOW)
    assert str(e.value) == msg


@pytest.mark.parametrize("case,current,target,pod_list,values,want", [
    ("average value up", 3, 15000, pods(3), [20000, 10000, 30000], (4, 20000)),
    ("average value within", 3, 20000, pods(3), [20000, 21000, 19000], (3, 20000)),
    ("average value down", 4, 20000, pods(4), [5000, 5000, 5000, 5000], (1, 5000)),
    ("missing on scale down counts as the target", 3, 20000, pods(3), [5000, 5000, None], (2, 5000)),
])
def test_plain_metric_replicas(case, current, target, pod_list, values, want):
    assert rc.plain_metric_replicas(current, target, "", pod_list, metrics(values), NOW) == want


@pytest.mark.parametrize("current,ratio,ready,want", [(3, 1.05, 3, 3), (3, 2.0, 3, 6), (3, 0.5, 2, 1), (0, 2.5, 0, 3)])
def test_usage_ratio_replicas(current, ratio, ready, want):
    ps = pods(ready) + [pod("x", ready="False")]
    assert rc.usage_ratio_replicas(current, ratio, ps) == want


@pytest.mark.parametrize("status,target,usage,want", [(2, 10000, 40000, (4, 20000)), (4, 10000, 41000, (4, 10250))])
def test_per_pod_replicas(status, target, usage, want):
    assert rc.per_pod_replicas(status, target, usage) == want


# --- normalization -------------------------------------------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.t = NOW

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def norm():
    clock = Clock()
    return hn.Normalizer(clock, 300.0), clock


def conds():
    got: dict[str, tuple[str, str]] = {}
    return got, lambda t, s, r, m: got.__setitem__(t, (s, r))


def test_scale_down_waits_for_the_stabilization_window(norm):
    n, clock = norm
    n.record_initial("k", 5)
    got, cond = conds()
    assert n.normalize("k", 5, 2, 1, 10, cond) == 5
    assert got["AbleToScale"] == ("True", "ScaleDownStabilized")
    clock.t += 299
    assert n.normalize("k", 5, 2, 1, 10, cond) == 5
    clock.t += 2  # the initial recommendation of 5 is now older than 300 s: only 2s remain
    assert n.normalize("k", 5, 2, 1, 10, cond) == 2
    assert got["AbleToScale"] == ("True", "ReadyForNewScale") and got["ScalingLimited"] == ("False", "DesiredWithinRange")


@pytest.mark.parametrize("current,desired,lo,hi,want,reason", [
    (1, 10, 1, 20, 4, "ScaleUpLimit"),  # max(2*1, 4)
    (5, 30, 1, 20, 10, "ScaleUpLimit"),
    (5, 30, 1, 8, 8, "TooManyReplicas"),
    (5, 0, 1, 8, 1, "TooFewReplicas"),
    (5, 6, 1, 8, 6, "DesiredWithinRange"),
])
def test_rules_without_behavior(current, desired, lo, hi, want, reason):
    got, why, _message = hn.convert_with_rules(current, desired, lo, hi)
    assert (got, why) == (want, reason)


def behavior(up=None, down=None):
    b = {}
    if up is not None:
        b["scaleUp"] = up
    if down is not None:
        b["scaleDown"] = down
    return b


def test_behavior_defaults_fill_unset_rules():
    b = hn.default_behavior({"scaleDown": {"stabilizationWindowSeconds": 10}})
    assert b["scaleUp"] == {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                            "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15},
                                         {"type": "Percent", "value": 100, "periodSeconds": 15}]}
    assert b["scaleDown"] == {"stabilizationWindowSeconds": 10, "selectPolicy": "Max",
                              "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}
    assert hn.default_behavior(None) is None


@pytest.mark.parametrize("b,current,desired,lo,hi,want,reason", [
    # default scale-up: max(+4 pods, +100 %) per 15 s
    (behavior(), 1, 10, 1, 20, 5, "ScaleUpLimit"),
    (behavior(), 10, 40, 1, 50, 20, "ScaleUpLimit"),
    (behavior(up={"selectPolicy": "Min", "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15},
                                                      {"type": "Percent", "value": 100, "periodSeconds": 15}]}),
     10, 40, 1, 50, 14, "ScaleUpLimit"),
    (behavior(up={"selectPolicy": "Disabled"}), 3, 9, 1, 20, 3, "ScaleUpLimit"),
    (behavior(), 3, 9, 1, 5, 5, "TooManyReplicas"),
    # scale-down with no window: 100 % per 15 s, so straight to the wish
    (behavior(down={"stabilizationWindowSeconds": 0}), 10, 1, 1, 20, 1, "DesiredWithinRange"),
    (behavior(down={"stabilizationWindowSeconds": 0, "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}]}),
     10, 1, 1, 20, 5, "ScaleDownLimit"),
    (behavior(down={"stabilizationWindowSeconds": 0, "policies": [{"type": "Pods", "value": 2, "periodSeconds": 60}]}),
     10, 1, 3, 20, 8, "ScaleDownLimit"),
    (behavior(down={"stabilizationWindowSeconds": 0, "selectPolicy": "Disabled"}), 10, 1, 1, 20, 10, "ScaleDownLimit"),
    (behavior(down={"stabilizationWindowSeconds": 0}), 10, 0, 2, 20, 2, "TooFewReplicas"),
])
def test_behavior_policies(norm, b, current, desired, lo, hi, want, reason):
    n, _ = norm
    got, cond = conds()
    assert n.normalize_with_behaviors("k", b, current, desired, lo, hi, cond) == want
    assert got["ScalingLimited"][1] == reason
    assert got["ScalingLimited"][0] == ("False" if want == desired else "True")


def test_policy_period_counts_earlier_scale_events(norm):
    n, clock = norm
    b = behavior(up={"policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]})
    _, cond = conds()
    assert n.normalize_with_behaviors("k", b, 2, 6, 1, 10, cond) == 3
    n.store_scale_event(b, "k", 2, 3)
    clock.t += 30  # inside the 60 s period: the start of the period had 2 replicas, +1 allowed
    assert n.normalize_with_behaviors("k", b, 3, 6, 1, 10, cond) == 3
    clock.t += 31  # the event left the period
    assert n.normalize_with_behaviors("k", b, 3, 6, 1, 10, cond) == 4


def test_default_scale_down_window_applies_with_behavior(norm):
    n, clock = norm
    b = behavior()  # scaleDown window unset: the controller's 300 s
    got, cond = conds()
    n.record_initial("k", 4)
    assert n.normalize_with_behaviors("k", b, 4, 1, 1, 10, cond) == 4
    assert got["AbleToScale"] == ("True", "ScaleDownStabilized")
    clock.t += 301
    assert n.normalize_with_behaviors("k", b, 4, 1, 1, 10, cond) == 1


def test_scale_up_stabilization_window(norm):
    n, clock = norm
    b = behavior(up={"stabilizationWindowSeconds": 60})
    got, cond = conds()
    n.record_initial("k", 3)
    clock.t += 10
    assert n.normalize_with_behaviors("k", b, 3, 6, 1, 10, cond) == 3
    assert got["AbleToScale"] == ("True", "ScaleUpStabilized")
    clock.t += 61  # every recommendation of the last minute says 6 now
    assert n.normalize_with_behaviors("k", b, 3, 6, 1, 10, cond) == 6


def test_set_condition_keeps_transition_time_unless_status_changes():
    cs: list[dict] = []
    hn.set_condition(cs, "AbleToScale", "True", "A", "a", 100.0)
    hn.set_condition(cs, "AbleToScale", "True", "B", "b", 200.0)
    assert cs == [{"type": "AbleToScale", "status": "True", "lastTransitionTime": rfc3339(100.0), "reason": "B", "message": "b"}]
    hn.set_condition(cs, "AbleToScale", "False", "C", "c", 300.0)
    assert cs[0]["lastTransitionTime"] == rfc3339(300.0)


@pytest.mark.parametrize("q", ["48302113n", "1500u", "250m", "2", "0", "12345Ki", "64Mi", "1.5", "100e-3", "1G", "7k"])
def test_milli_fast_path_matches_quantity(q):
    import math as _m
    from controlplane.machinery.quantity import parse_quantity
    assert rc.milli(q) == _m.ceil(parse_quantity(q) * 1000)
