"""The HPA controller's shared namespace PodMetrics list and its cached Scale views: the same
answers as a per-HPA ``labelSelector`` list and a GET of ``/scale`` would give."""

from __future__ import annotations

import pytest

from controlplane.controllers import replicacalculator as rc
import json

from controlplane.controllers.horizontalpodautoscaler import (
    _NamespacePodMetrics,
    decode_pod_metrics_list,
    pod_metrics_from_dicts,
    scale_of,
)
from controlplane.machinery.selectors import parse_label_selector

TS = "2026-12-06T00:00:00Z"


def pm(name: str, labels: dict[str, str], containers: dict[str, dict[str, str]]) -> dict:
    return {"kind": "PodMetrics", "metadata": {"name": name, "namespace": "ns", "labels": labels},
            "timestamp": TS, "window": "15s",
            "containers": [{"name": c, "usage": u} for c, u in containers.items()]}


ITEMS = [
    pm("a-1", {"app": "a"}, {"app": {"cpu": "100m", "memory": "10Mi"}}),
    pm("b-1", {"app": "b", "tier": "web"}, {"app": {"cpu": "250000000n", "memory": "1Ki"},
                                           "side": {"cpu": "5m", "memory": "1Ki"}}),
    pm("a-2", {"app": "a"}, {"app": {"cpu": "300m", "memory": "20Mi"}}),
    pm("b-2", {"app": "b", "tier": "web"}, {"app": {"cpu": "1", "memory": "1Ki"}}),
    pm("c-1", {"app": "c"}, {"app": {"memory": "1Ki"}}),  # no cpu: skipped for cpu
]


def reference(selector: str, resource: str, container: str = "") -> dict[str, int]:
    """What a server-side filtered list gave the old per-HPA code."""
    sel = parse_label_selector(selector)
    items = [m for m in ITEMS if sel.matches(m["metadata"]["labels"])]
    if not items:
        raise rc.CalcError("no metrics returned from resource metrics API")
    out = {}
    for m in items:
        cs = m["containers"]
        if container:
            c = next((c for c in cs if c["name"] == container), None)
            if c is None:
                raise rc.CalcError(f"failed to get container metrics: container {container} not present in "
                                   f"metrics for pod ns/{m['metadata']['name']}")
            if resource in c["usage"]:
                out[m["metadata"]["name"]] = rc.milli(c["usage"][resource])
            continue
        if cs and all(resource in c["usage"] for c in cs):
            out[m["metadata"]["name"]] = sum(rc.milli(c["usage"][resource]) for c in cs)
    return out


@pytest.mark.parametrize("selector,resource,container", [
    ("app=a", "cpu", ""), ("app=b", "cpu", ""), ("app in (a,b)", "cpu", ""), ("app", "memory", ""),
    ("tier=web", "cpu", "side"), ("app=c", "cpu", ""), ("app=zzz", "cpu", ""), ("app!=a", "memory", ""),
    ("app=b", "cpu", "app"), ("app in (a,b)", "cpu", "side"),
])
def test_select_matches_a_server_side_selector(selector: str, resource: str, container: str) -> None:
    entry = _NamespacePodMetrics(pod_metrics_from_dicts(ITEMS), 0.0)
    try:
        want: dict[str, int] | str = reference(selector, resource, container)
    except rc.CalcError as e:
        want = str(e)
    for _ in range(2):  # the second answer comes from the per-group values computed by the first
        try:
            got, _ts = entry.select(parse_label_selector(selector), resource, container)
            have: dict[str, int] | str = {k: v.value for k, v in got.items()}
        except rc.CalcError as e:
            have = str(e)
        assert have == want


def test_select_names_the_first_pod_without_the_container_in_list_order() -> None:
    entry = _NamespacePodMetrics(pod_metrics_from_dicts(ITEMS), 0.0)
    with pytest.raises(rc.CalcError, match="metrics for pod ns/a-1"):
        entry.select(parse_label_selector("app in (a,b)"), "cpu", "side")


@pytest.mark.parametrize("kind,obj,want", [
    ("Deployment", {"metadata": {"name": "d", "namespace": "n", "resourceVersion": "7", "uid": "u"},
                    "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "x"},
                                                         "matchExpressions": [{"key": "t", "operator": "Exists"}]}},
                    "status": {"replicas": 2}},
     {"kind": "Scale", "apiVersion": "autoscaling/v1",
      "metadata": {"name": "d", "namespace": "n", "uid": "u", "resourceVersion": "7"},
      "spec": {"replicas": 3}, "status": {"replicas": 2, "selector": "app=x,t"}}),
    ("ReplicationController", {"metadata": {"name": "r", "namespace": "n"},
                               "spec": {"replicas": 0, "selector": {"b": "2", "a": "1"}}},
     {"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": {"name": "r", "namespace": "n"},
      "spec": {"replicas": 0}, "status": {"replicas": 0, "selector": "a=1,b=2"}}),
    ("StatefulSet", {"metadata": {"name": "s", "namespace": "n"}, "spec": {"replicas": 1}},
     {"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": {"name": "s", "namespace": "n"},
      "spec": {"replicas": 1}, "status": {"replicas": 0}}),
])
def test_scale_of_is_the_subresource_view(kind: str, obj: dict, want: dict) -> None:
    assert scale_of(kind, obj) == want


def test_values_keep_each_items_own_timestamp_and_window() -> None:
    """The values of one group, whose items carry runs of different timestamps and windows."""
    times = ["2026-12-06T00:00:00Z", "2026-12-06T00:00:00Z", "2026-12-06T00:00:07Z", "2026-12-06T00:00:00Z", None]
    windows = ["15s", "15s", "30s", "30s", "15s"]
    items = []
    for i, (t, w) in enumerate(zip(times, windows)):
        it = pm(f"p-{i}", {"app": "a"}, {"app": {"cpu": f"{i}m"}})
        it["timestamp"], it["window"] = t, w
        items.append(it)
    got, _ = _NamespacePodMetrics(pod_metrics_from_dicts(items), 0.0).select(parse_label_selector("app=a"), "cpu", "")
    from controlplane.controllers.horizontalpodautoscaler import _go_duration, _ts
    assert got == {f"p-{i}": rc.PodMetric(i, _ts(t), _go_duration(w)) for i, (t, w) in enumerate(zip(times, windows))}


def _values(items: list, selector: str, resource: str, container: str = "") -> dict[str, int] | str:
    try:
        got, _ = _NamespacePodMetrics(items, 0.0).select(parse_label_selector(selector), resource, container)
    except rc.CalcError as e:
        return str(e)
    return {k: v.value for k, v in got.items()}


@pytest.mark.parametrize("selector,resource,container", [
    ("app=a", "cpu", ""), ("app=b", "cpu", ""), ("tier=web", "cpu", "side"), ("app", "memory", ""),
])
def test_the_typed_decoder_reads_what_the_dicts_say(selector: str, resource: str, container: str) -> None:
    raw = json.dumps({"kind": "PodMetricsList", "apiVersion": "metrics.k8s.io/v1beta1", "metadata": {},
                      "items": ITEMS}).encode()
    assert _values(decode_pod_metrics_list(raw), selector, resource, container) == \
        _values(pod_metrics_from_dicts(ITEMS), selector, resource, container)


@pytest.mark.parametrize("body,want", [
    # a quantity as a JSON number (not Kubernetes' form, but a number a server may send)
    ({"items": [pm("n-1", {"app": "a"}, {"app": {"cpu": 2}})]}, {"n-1": 2000}),
    # nulls where objects were expected: read as absent, the other items still count
    ({"items": [{"metadata": None, "containers": None},
                pm("a-1", {"app": "a"}, {"app": {"cpu": "100m"}})]}, {"a-1": 100}),
    ({"items": [pm("a-1", {"app": "a"}, {"app": {"cpu": "100m"}}), "not an object"]}, {"a-1": 100}),
    # labels that are not strings: compared as their text
    ({"items": [pm("a-1", {"app": "a", "n": 1}, {"app": {"cpu": "7m"}})]}, {"a-1": 7}),
    # labels null or not an object: no labels (the selector matches nothing there)
    ({"items": [pm("a-1", None, {"app": {"cpu": "7m"}}), pm("a-2", {"app": "a"}, {"app": {"cpu": "8m"}})]}, {"a-2": 8}),
    ({"items": [pm("a-1", ["app", "a"], {"app": {"cpu": "7m"}})]}, "no metrics returned from resource metrics API"),
    ({"items": None}, "no metrics returned from resource metrics API"),
    ({}, "no metrics returned from resource metrics API"),
    ([], "no metrics returned from resource metrics API"),
])
def test_bodies_of_another_shape_are_read_leniently(body: object, want: object) -> None:
    items = decode_pod_metrics_list(json.dumps(body).encode())
    assert _values(items, "app=a", "cpu") == want
