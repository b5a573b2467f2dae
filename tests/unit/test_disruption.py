"""PodDisruptionBudget rules (``machinery.disruption``) and the disruption controller's pure part
(``controllers.disruption.compute``), table-driven against Kubernetes' behaviour."""

from __future__ import annotations

import asyncio

import pytest

from controlplane.controllers import disruption as dc
from controlplane.machinery import disruption as d
from controlplane.machinery.timestamps import rfc3339

NOW = 1_800_000_000.0


def pod(name: str, *, labels: dict | None = None, ready: bool = True, phase: str = "Running",
        deleting: bool = False, owner: dict | None = None, ns: str = "ns") -> dict:
    md: dict = {"name": name, "namespace": ns, "labels": {"app": "web"} if labels is None else labels,
                "resourceVersion": "7"}
    if deleting:
        md["deletionTimestamp"] = rfc3339(NOW - 1)
    if owner is not None:
        md["ownerReferences"] = [{**owner, "controller": True}]
    return {"metadata": md, "status": {"phase": phase, "conditions": [
        {"type": "Ready", "status": "True" if ready else "False"}]}}


def pdb(*, min_available=None, max_unavailable=None, selector=None, status: dict | None = None, generation: int = 1,
        policy: str | None = None, ns: str = "ns") -> dict:
    spec: dict = {"selector": {"matchLabels": {"app": "web"}} if selector is None else selector}
    if min_available is not None:
        spec["minAvailable"] = min_available
    if max_unavailable is not None:
        spec["maxUnavailable"] = max_unavailable
    if policy:
        spec["unhealthyPodEvictionPolicy"] = policy
    return {"metadata": {"name": "budget", "namespace": ns, "generation": generation}, "spec": spec,
            "status": status or {}}


# -- which budgets guard a pod (the Eviction API) ------------------------------------------------

@pytest.mark.parametrize("selector,labels,ns,want", [
    ({"matchLabels": {"app": "web"}}, {"app": "web"}, "ns", True),
    ({"matchLabels": {"app": "web"}}, {"app": "db"}, "ns", False),
    ({"matchLabels": {"app": "web"}}, {"app": "web"}, "other", False),   # another namespace
    ({}, {"app": "web"}, "ns", False),                                    # empty: nothing (eviction)
    ({"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "api"]}]}, {"app": "api"}, "ns", True),
    ({"matchExpressions": [{"key": "app", "operator": "Bogus"}]}, {"app": "web"}, "ns", False),  # invalid
])
def test_guards(selector, labels, ns, want):
    assert d.guards(pdb(selector=selector), pod("p", labels=labels, ns=ns)) is want


def test_nil_selector_guards_nothing():
    b = pdb()
    b["spec"]["selector"] = None
    assert not d.guards(b, pod("p"))


@pytest.mark.parametrize("phase,deleting,ignore,enforce", [
    ("Running", False, False, True),
    ("Pending", False, True, True),     # pending: no budget, but only the version judged
    ("Succeeded", False, True, False),
    ("Failed", False, True, False),
    ("Running", True, True, False),     # already terminating
])
def test_can_ignore_and_enforce(phase, deleting, ignore, enforce):
    p = pod("p", phase=phase, deleting=deleting)
    assert d.can_ignore_budget(p) is ignore
    assert d.enforce_resource_version(p) is enforce


@pytest.mark.parametrize("policy,current,desired,want", [
    ("AlwaysAllow", 0, 3, True),
    (None, 3, 2, True),        # IfHealthyBudget (default): the budget is met
    (None, 2, 2, True),
    (None, 1, 2, False),       # not met: the unready pod spends a disruption like any other
    (None, 0, 0, False),       # desiredHealthy 0: not "met"
    ("IfHealthyBudget", 3, 2, True),
])
def test_unhealthy_may_go(policy, current, desired, want):
    b = pdb(min_available=2, policy=policy, status={"currentHealthy": current, "desiredHealthy": desired})
    assert d.unhealthy_may_go(b) is want


# -- check and decrement ---------------------------------------------------------------------

@pytest.mark.parametrize("status,generation,code,cause", [
    ({"observedGeneration": 1, "disruptionsAllowed": 0, "currentHealthy": 2, "desiredHealthy": 2}, 1, 429,
     "The disruption budget budget needs 2 healthy pods and has 2 currently"),
    ({"observedGeneration": 1, "disruptionsAllowed": 1}, 2, 429,
     "The disruption budget budget is still being processed by the server."),
    ({"observedGeneration": 1, "disruptionsAllowed": -1}, 1, 403, None),
    ({"observedGeneration": 1, "disruptionsAllowed": 5,
      "disruptedPods": {f"p{i}": rfc3339(NOW) for i in range(2001)}}, 1, 403, None),
])
def test_check_and_decrement_refusals(status, generation, code, cause):
    with pytest.raises(d.EvictionRefused) as e:
        d.check_and_decrement(pdb(min_available=2, status=status, generation=generation), "p", NOW, dry=False)
    assert e.value.code == code and e.value.cause == cause
    if code == 429:
        assert e.value.message == "Cannot evict pod as it would violate the pod's disruption budget."
    else:
        assert e.value.message.startswith('poddisruptionbudget.policy "budget" is forbidden: ')


@pytest.mark.parametrize("allowed,dry,cond", [(2, False, None), (1, False, "InsufficientPods"), (1, True, "InsufficientPods")])
def test_check_and_decrement_spends(allowed, dry, cond):
    before = pdb(min_available=2, status={"observedGeneration": 1, "disruptionsAllowed": allowed, "currentHealthy": 3,
                                          "desiredHealthy": 2, "disruptedPods": {"old": rfc3339(NOW - 5)}})
    after = d.check_and_decrement(before, "p", NOW, dry=dry)
    st = after["status"]
    assert st["disruptionsAllowed"] == allowed - 1
    assert before["status"]["disruptionsAllowed"] == allowed, "the input is not changed"
    assert ("p" in st["disruptedPods"]) is (not dry) and "old" in st["disruptedPods"]
    conds = {c["type"]: c for c in st.get("conditions") or []}
    if cond is None:
        assert "DisruptionAllowed" not in conds
    else:
        assert conds["DisruptionAllowed"]["status"] == "False" and conds["DisruptionAllowed"]["reason"] == cond


def test_set_condition_moves_transition_time_only_on_change():
    conds: list[dict] = []
    d.set_condition(conds, "True", "SufficientPods", "", 1, NOW)
    d.set_condition(conds, "True", "SufficientPods", "", 2, NOW + 10)
    assert conds[0]["lastTransitionTime"] == rfc3339(NOW) and conds[0]["observedGeneration"] == 2
    d.set_condition(conds, "False", "InsufficientPods", "", 2, NOW + 20)
    assert conds == [{"type": "DisruptionAllowed", "status": "False", "observedGeneration": 2,
                      "lastTransitionTime": rfc3339(NOW + 20), "reason": "InsufficientPods", "message": ""}]


# -- the controller's computation ----------------------------------------------------------------

RS = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "uid": "rs-1"}
SCALES = {"rs-1": ("dep-1", 4)}  # the ReplicaSet's pods count against their Deployment's scale


async def scale_of(ref: dict, ns: str):
    return SCALES.get(ref.get("uid", ""))


def run(coro):
    return asyncio.run(coro)


@pytest.mark.parametrize("budget,pods,want", [
    # integer minAvailable: expected = the pods, desired = the number
    (pdb(min_available=2), [pod("a"), pod("b"), pod("c")],
     dict(expectedPods=3, desiredHealthy=2, currentHealthy=3, disruptionsAllowed=1)),
    (pdb(min_available=3), [pod("a"), pod("b"), pod("c", ready=False)],
     dict(expectedPods=3, desiredHealthy=3, currentHealthy=2, disruptionsAllowed=0)),
    # a pod being deleted is not healthy
    (pdb(min_available=1), [pod("a"), pod("b", deleting=True)],
     dict(expectedPods=2, desiredHealthy=1, currentHealthy=1, disruptionsAllowed=0)),
    # a percentage scales against the controllers' scale (the Deployment's 4), rounded up
    (pdb(min_available="50%"), [pod("a", owner=RS), pod("b", owner=RS), pod("c", owner=RS)],
     dict(expectedPods=4, desiredHealthy=2, currentHealthy=3, disruptionsAllowed=1)),
    (pdb(max_unavailable="30%"), [pod("a", owner=RS), pod("b", owner=RS), pod("c", owner=RS)],
     dict(expectedPods=4, desiredHealthy=2, currentHealthy=3, disruptionsAllowed=1)),
    (pdb(max_unavailable=1), [pod("a", owner=RS), pod("b", owner=RS), pod("c", owner=RS), pod("d", owner=RS)],
     dict(expectedPods=4, desiredHealthy=3, currentHealthy=4, disruptionsAllowed=1)),
    (pdb(max_unavailable=9), [pod("a", owner=RS)],
     dict(expectedPods=4, desiredHealthy=0, currentHealthy=1, disruptionsAllowed=1)),
    # no pods: nothing may be disrupted (expected 0)
    (pdb(min_available=0), [], dict(expectedPods=0, desiredHealthy=0, currentHealthy=0, disruptionsAllowed=0)),
])
def test_compute_counts(budget, pods, want):
    got = run(dc.compute(budget, pods, scale_of, NOW))
    st = got.status
    assert {k: st[k] for k in want} == want
    assert st["observedGeneration"] == 1
    cond = st["conditions"][0]
    assert (cond["status"], cond["reason"]) == (("True", "SufficientPods") if want["disruptionsAllowed"] > 0
                                                else ("False", "InsufficientPods"))


def test_compute_unmanaged_pods_are_reported_and_not_counted():
    got = run(dc.compute(pdb(max_unavailable=1), [pod("bare"), pod("a", owner=RS)], scale_of, NOW))
    assert got.unmanaged == ["bare"]
    assert got.status["expectedPods"] == 4 and got.status["desiredHealthy"] == 3


@pytest.mark.parametrize("budget,pods,message", [
    (pdb(min_available="50%"), [pod("a", owner={**RS, "uid": "gone"})], 'found no controllers for pod "a"'),
    (pdb(max_unavailable="half"), [pod("a", owner=RS)],
     "invalid value for IntOrString: invalid type: string is not a percentage"),
])
def test_compute_errors(budget, pods, message):
    with pytest.raises(dc.ExpectedCountError, match=message):
        run(dc.compute(budget, pods, scale_of, NOW))


def test_disrupted_pods_are_not_healthy_until_they_expire():
    fresh, stale = rfc3339(NOW - 10), rfc3339(NOW - dc.DELETION_TIMEOUT - 1)
    budget = pdb(min_available=1, status={"disruptedPods": {"a": fresh, "b": stale, "gone": fresh, "c": fresh}})
    pods = [pod("a"), pod("b"), pod("c", deleting=True), pod("d")]
    got = run(dc.compute(budget, pods, scale_of, NOW))
    # a: pending deletion (not healthy, kept); b: overdue (healthy again, dropped, reported);
    # gone: no such pod (dropped); c: being deleted (dropped, not healthy)
    assert got.status["disruptedPods"] == {"a": fresh}
    assert [p["metadata"]["name"] for p in got.overdue] == ["b"]
    assert got.status["currentHealthy"] == 2  # b and d
    assert got.recheck_at == pytest.approx(NOW - 10 + dc.DELETION_TIMEOUT)


def test_fail_safe_status_allows_nothing():
    st = dc.fail_safe_status(pdb(min_available=1, status={"observedGeneration": 1, "disruptionsAllowed": 3,
                                                          "currentHealthy": 4, "desiredHealthy": 1, "expectedPods": 4}),
                             "found no controllers", NOW)
    assert st["disruptionsAllowed"] == 0 and st["currentHealthy"] == 4
    assert st["conditions"][0]["reason"] == "SyncFailed" and st["conditions"][0]["message"] == "found no controllers"


@pytest.mark.parametrize("value,total,want", [(2, 10, 2), ("50%", 3, 2), ("34%", 3, 2), ("0%", 5, 0), ("100%", 7, 7)])
def test_scaled_value(value, total, want):
    assert dc.scaled_value(value, total) == want


def test_selector_text_is_gos():
    assert dc.selector_text({"matchLabels": {"app": "web"}}) == (
        "&LabelSelector{MatchLabels:map[string]string{app: web,},MatchExpressions:[]LabelSelectorRequirement{},}")
