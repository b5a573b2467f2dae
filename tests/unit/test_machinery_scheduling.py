"""Toleration and node-selector matching (``controlplane.machinery.scheduling``), table-driven;
the cases follow Kubernetes' ``component-helpers/scheduling/corev1`` tests."""

from __future__ import annotations

import pytest

from controlplane.machinery import scheduling as s

TAINT = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}


@pytest.mark.parametrize("tol,taint,want", [
    ({"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}, TAINT, True),
    ({"key": "dedicated", "value": "gpu"}, TAINT, True),  # Equal is the default, empty effect = all
    ({"key": "dedicated", "operator": "Equal", "value": "cpu"}, TAINT, False),
    ({"key": "dedicated", "operator": "Exists"}, TAINT, True),
    ({"key": "other", "operator": "Exists"}, TAINT, False),
    ({"operator": "Exists"}, TAINT, True),  # empty key + Exists tolerates everything
    ({"operator": "Exists", "effect": "NoExecute"}, TAINT, False),
    ({"key": "dedicated", "operator": "Exists", "effect": "NoExecute"}, TAINT, False),
    ({"operator": "Equal", "value": "gpu"}, TAINT, False),  # empty key needs Exists
    ({"key": "dedicated", "operator": "Bogus", "value": "gpu"}, TAINT, False),
    ({"key": "k", "operator": "Equal"}, {"key": "k", "effect": "NoExecute"}, True),  # "" == missing value
], ids=["equal", "default-operator", "value-differs", "exists", "other-key", "wildcard", "wildcard-wrong-effect",
        "wrong-effect", "empty-key-equal", "unknown-operator", "empty-values"])
def test_toleration_tolerates(tol, taint, want):
    assert s.toleration_tolerates(tol, taint) is want
    assert s.tolerates([{"key": "unrelated", "operator": "Exists"}, tol], taint) is want


@pytest.mark.parametrize("taints,tolerations,want", [
    ([], [], None),
    ([TAINT], [], TAINT),
    ([TAINT], [{"key": "dedicated", "operator": "Exists"}], None),
    ([{"key": "soft", "effect": "PreferNoSchedule"}], [], None),  # not one of the filtered effects
    ([{"key": "a", "effect": "NoExecute"}, TAINT], [{"key": "a", "operator": "Exists"}], TAINT),
], ids=["no-taints", "untolerated", "tolerated", "prefer-ignored", "second-taint"])
def test_find_untolerated_taint(taints, tolerations, want):
    assert s.find_untolerated_taint(taints, tolerations) == want


NOEXEC = {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}
FOREVER = {"key": "node.kubernetes.io/unreachable", "operator": "Exists"}
T300 = {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "tolerationSeconds": 300}
T5 = {"operator": "Exists", "tolerationSeconds": 5}


@pytest.mark.parametrize("taints,tolerations,ok,used,secs", [
    ([], [], True, [], None),
    ([NOEXEC], [], False, [], None),
    ([NOEXEC], [FOREVER], True, [FOREVER], None),
    ([NOEXEC], [T300, T5], True, [T300], 300.0),  # the first toleration that matches is used
    ([NOEXEC, {"key": "x", "effect": "NoExecute"}], [T300, T5], True, [T300, T5], 5.0),
    ([NOEXEC], [{**T300, "tolerationSeconds": 0}], True, [{**T300, "tolerationSeconds": 0}], 0.0),
], ids=["none", "untolerated", "forever", "first-match", "shortest-of-used", "zero"])
def test_matching_tolerations_and_min_seconds(taints, tolerations, ok, used, secs):
    got_ok, got_used = s.matching_tolerations(taints, tolerations)
    assert (got_ok, got_used) == (ok, used)
    if ok:
        assert s.min_toleration_seconds(got_used) == secs


LABELS = {"zone": "a", "gpus": "4", "disk": "ssd"}


@pytest.mark.parametrize("expr,want", [
    ({"key": "zone", "operator": "In", "values": ["a", "b"]}, True),
    ({"key": "zone", "operator": "In", "values": ["b"]}, False),
    ({"key": "missing", "operator": "In", "values": ["a"]}, False),
    ({"key": "zone", "operator": "NotIn", "values": ["b"]}, True),
    ({"key": "missing", "operator": "NotIn", "values": ["a"]}, True),
    ({"key": "zone", "operator": "NotIn", "values": ["a"]}, False),
    ({"key": "disk", "operator": "Exists"}, True),
    ({"key": "missing", "operator": "Exists"}, False),
    ({"key": "missing", "operator": "DoesNotExist"}, True),
    ({"key": "disk", "operator": "DoesNotExist"}, False),
    ({"key": "gpus", "operator": "Gt", "values": ["3"]}, True),
    ({"key": "gpus", "operator": "Gt", "values": ["4"]}, False),
    ({"key": "gpus", "operator": "Lt", "values": ["5"]}, True),
    ({"key": "zone", "operator": "Gt", "values": ["1"]}, False),  # not an integer
    ({"key": "gpus", "operator": "Gt", "values": ["1", "2"]}, False),  # exactly one value
    ({"key": "missing", "operator": "Lt", "values": ["5"]}, False),
    ({"key": "zone", "operator": "Bogus", "values": ["a"]}, False),
], ids=["in", "in-miss", "in-missing-key", "notin", "notin-missing-key", "notin-miss", "exists", "exists-miss",
        "doesnotexist", "doesnotexist-miss", "gt", "gt-equal", "lt", "gt-not-int", "gt-two-values", "lt-missing",
        "unknown-operator"])
def test_requirement_matches(expr, want):
    assert s.requirement_matches(expr, LABELS) is want


NAME_IN = {"key": "metadata.name", "operator": "In", "values": ["n1"]}
ZONE_A = {"key": "zone", "operator": "In", "values": ["a"]}
ZONE_B = {"key": "zone", "operator": "In", "values": ["b"]}


@pytest.mark.parametrize("selector,name,want", [
    (None, "n1", True),
    ({"nodeSelectorTerms": []}, "n1", False),
    ({"nodeSelectorTerms": [{}]}, "n1", False),  # an empty term matches nothing
    ({"nodeSelectorTerms": [{"matchExpressions": [ZONE_A]}]}, "n1", True),
    ({"nodeSelectorTerms": [{"matchExpressions": [ZONE_B]}, {"matchExpressions": [ZONE_A]}]}, "n1", True),  # OR
    ({"nodeSelectorTerms": [{"matchExpressions": [ZONE_A, ZONE_B]}]}, "n1", False),  # AND within a term
    ({"nodeSelectorTerms": [{"matchFields": [NAME_IN]}]}, "n1", True),
    ({"nodeSelectorTerms": [{"matchFields": [NAME_IN]}]}, "n2", False),
    ({"nodeSelectorTerms": [{"matchExpressions": [ZONE_A], "matchFields": [NAME_IN]}]}, "n2", False),
], ids=["none", "no-terms", "empty-term", "expression", "or-of-terms", "and-in-term", "field", "field-miss",
        "expression-and-field"])
def test_node_selector_matches(selector, name, want):
    assert s.node_selector_matches(selector, LABELS, name) is want


def _required(*terms: dict) -> dict:
    return {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": list(terms)}}}}


@pytest.mark.parametrize("spec,want", [
    ({}, True),
    ({"nodeSelector": {"zone": "a"}}, True),
    ({"nodeSelector": {"zone": "b"}}, False),
    ({"nodeSelector": {"zone": "a", "disk": "hdd"}}, False),
    (_required({"matchExpressions": [ZONE_A]}), True),
    (_required({"matchExpressions": [ZONE_B]}), False),
    ({**_required({"matchExpressions": [ZONE_A]}), "nodeSelector": {"disk": "hdd"}}, False),  # both must match
    ({"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 1, "preference": {"matchExpressions": [ZONE_B]}}]}}}, True),  # preferred is not required
], ids=["empty", "selector", "selector-miss", "selector-partial", "affinity", "affinity-miss", "selector-and-affinity",
        "preferred-ignored"])
def test_required_node_affinity_matches(spec, want):
    assert s.required_node_affinity_matches(spec, LABELS, "n1") is want
