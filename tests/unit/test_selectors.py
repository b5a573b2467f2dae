"""Label and field selector parsing and matching (controlplane.machinery.selectors), table-driven
against the behaviour of Kubernetes' labels/fields packages."""

from __future__ import annotations

import pytest

from controlplane.machinery.fields import (
    convert_label, fields_for, resource_key, stored_resource, supported_fields, unsupported,
)
from controlplane.machinery.selectors import LabelSelector, parse_field_selector, parse_label_selector

LABELS = {"app": "web", "tier": "front", "version": "3", "example.com/team": "a"}

MATCH_CASES = [
    ("", True),
    ("app=web", True),
    ("app==web", True),
    ("app=db", False),
    ("app!=db", True),
    ("app!=web", False),
    ("missing!=x", True),
    ("app in (web,db)", True),
    ("app in (db)", False),
    ("app notin (db)", True),
    ("app notin (web, db)", False),
    ("missing notin (x)", True),
    ("missing in (x)", False),
    ("app", True),
    ("missing", False),
    ("!missing", True),
    ("!app", False),
    ("app=web,tier=front", True),
    ("app=web,tier=back", False),
    ("  app = web , tier in ( front , back ) ", True),
    ("example.com/team=a", True),
    ("version>2", True),
    ("version<3", False),
    ("missing>1", False),
    ("app=", False),
    ("missing=", False),
]


@pytest.mark.parametrize("text,expected", MATCH_CASES, ids=[c[0] or "<empty>" for c in MATCH_CASES])
def test_label_selector_matches(text: str, expected: bool) -> None:
    assert parse_label_selector(text).matches(LABELS) is expected


def test_empty_value_matches_empty_label() -> None:
    assert parse_label_selector("a=").matches({"a": ""})
    assert parse_label_selector("a in (,x)").matches({"a": ""})


BAD = [
    "app=web,",
    ",app",
    "app in web",
    "app in (web",
    "app in (a b)",
    "app notin",
    "=web",
    "app=web=x",
    "!",
    "!app=x",
    "app>x",
    "-bad=x",
    "a/b/c=1",
    "app=" + "x" * 64,
    "app=-x",
    "app = (x)",
]


@pytest.mark.parametrize("text", BAD)
def test_label_selector_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_label_selector(text)


CANON = [
    ("tier=front,app=web", "app=web,tier=front"),
    ("app in (b,a)", "app in (a,b)"),
    ("app==x", "app==x"),
    ("!a,b", "!a,b"),
    ("x notin (z, y)", "x notin (y,z)"),
    ("v>1", "v>1"),
]


@pytest.mark.parametrize("text,canon", CANON)
def test_label_selector_to_string_round_trips(text: str, canon: str) -> None:
    sel = parse_label_selector(text)
    assert sel.to_string() == canon
    assert parse_label_selector(canon) == sel


FROM_DICT = [
    ({}, {"a": "1"}, True),
    ({"matchLabels": {"app": "web"}}, LABELS, True),
    ({"matchLabels": {"app": "db"}}, LABELS, False),
    ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["front", "x"]}]}, LABELS, True),
    ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["front"]}]}, LABELS, False),
    ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, LABELS, True),
    ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, LABELS, False),
    ({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "zone", "operator": "DoesNotExist"}]}, LABELS, True),
]


@pytest.mark.parametrize("d,labels,expected", FROM_DICT)
def test_label_selector_from_dict(d: dict, labels: dict, expected: bool) -> None:
    assert LabelSelector.from_dict(d).matches(labels) is expected


def test_nil_selector_matches_nothing_and_empty_everything() -> None:
    assert not LabelSelector.from_dict(None).matches({})
    assert LabelSelector.from_dict({}).matches({})
    assert LabelSelector.from_dict({}).empty


@pytest.mark.parametrize("d", [
    {"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
    {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
    {"matchExpressions": [{"key": "a", "operator": "Bogus"}]},
    {"matchLabels": {"bad key": "x"}},
])
def test_label_selector_from_dict_rejects(d: dict) -> None:
    with pytest.raises(ValueError):
        LabelSelector.from_dict(d)


POD = {
    "metadata": {"name": "p1", "namespace": "ns"},
    "spec": {"nodeName": "n1", "restartPolicy": "Always", "schedulerName": "default-scheduler"},
    "status": {"phase": "Running", "podIP": "10.0.0.5"},
}

FIELD_CASES = [
    ("", True),
    ("metadata.name=p1", True),
    ("metadata.name==p1", True),
    ("metadata.name!=p1", False),
    ("spec.nodeName=n1,status.phase=Running", True),
    ("spec.nodeName=n1,status.phase!=Running", False),
    ("spec.nodeName=", False),
    ("status.nominatedNodeName=", True),
    ("status.podIP=10.0.0.5", True),
    ("metadata.namespace=other", False),
]


@pytest.mark.parametrize("text,expected", FIELD_CASES, ids=[c[0] or "<empty>" for c in FIELD_CASES])
def test_field_selector_matches_pod(text: str, expected: bool) -> None:
    assert parse_field_selector(text).matches(fields_for("pods", POD)) is expected


def test_field_selector_escapes() -> None:
    sel = parse_field_selector(r"metadata.name=a\,b\=c")
    assert sel.requirements[0].value == "a,b=c"
    assert sel.matches({"metadata.name": "a,b=c"})
    assert parse_field_selector(sel.to_string()) == sel


@pytest.mark.parametrize("text", ["metadata.name", "=x", "a=b,,c=d", "a=b=c", "a=\\x"])
def test_field_selector_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_field_selector(text)


FIELDS_FOR = [
    ("events", {"metadata": {"name": "e"}, "involvedObject": {"kind": "Pod", "name": "p"}, "reason": "Started",
                "source": {"component": "kubelet"}, "type": "Normal"},
     {"involvedObject.kind": "Pod", "involvedObject.name": "p", "reason": "Started", "source": "kubelet", "type": "Normal"}),
    ("secrets", {"metadata": {"name": "s"}, "type": "Opaque"}, {"type": "Opaque"}),
    ("nodes", {"metadata": {"name": "n"}, "spec": {"unschedulable": True}}, {"spec.unschedulable": "true"}),
    ("nodes", {"metadata": {"name": "n"}}, {"spec.unschedulable": "false"}),
    ("namespaces", {"metadata": {"name": "x"}, "status": {"phase": "Active"}}, {"status.phase": "Active", "metadata.namespace": ""}),
    ("replicasets.apps", {"metadata": {"name": "r"}, "status": {"replicas": 3}}, {"status.replicas": "3"}),
    ("jobs.batch", {"metadata": {"name": "j"}, "status": {"succeeded": 2}}, {"status.successful": "2"}),
    ("statefulsets.apps", {"metadata": {"name": "s"}, "status": {"replicas": 2}}, {"status.successful": ""}),
    ("services", {"metadata": {"name": "s"}, "spec": {"clusterIP": "None", "type": "ClusterIP"}},
     {"spec.clusterIP": "None", "spec.type": "ClusterIP"}),
    ("certificatesigningrequests.certificates.k8s.io", {"metadata": {"name": "c"}, "spec": {"signerName": "x.io/y"}},
     {"spec.signerName": "x.io/y"}),
    ("configmaps", {"metadata": {"name": "c", "namespace": "d"}}, {"metadata.name": "c", "metadata.namespace": "d"}),
]


@pytest.mark.parametrize("resource,obj,expected", FIELDS_FOR, ids=[f"{c[0]}-{i}" for i, c in enumerate(FIELDS_FOR)])
def test_fields_for(resource: str, obj: dict, expected: dict) -> None:
    got = fields_for(resource, obj)
    assert set(got) == supported_fields(resource)
    for k, v in expected.items():
        assert got[k] == v


@pytest.mark.parametrize("group, plural, fields, expected", [
    ("", "pods", ["spec.nodeName", "status.phase"], None),
    ("", "pods", ["spec.foo"], "field label not supported: spec.foo"),
    ("", "pods", ["spec.nodeName", "spec.foo", "spec.bar"], "field label not supported: spec.foo"),  # the first, in order
    ("", "configmaps", ["data.x"], 'field label "data.x" not supported for "ConfigMap"'),
    ("", "configmaps", ["metadata.name"], None),
    ("", "persistentvolumes", ["spec.x"],
     '"spec.x" is not a known field selector: only "metadata.name", "metadata.namespace"'),
    ("apps", "deployments", ["spec.replicas"],
     '"spec.replicas" is not a known field selector: only "metadata.name", "metadata.namespace"'),
    ("apps", "statefulsets", ["status.successful"], None),
    ("apps", "statefulsets", ["spec.x"], "field label not supported for appsv1.StatefulSet: spec.x"),
    ("batch", "jobs", ["status.successful"], None),
    ("batch", "jobs", ["status.failed"], 'field label "status.failed" not supported for batchv1.Job'),
    ("events.k8s.io", "events", ["regarding.name", "reportingController"], None),
    ("events.k8s.io", "events", ["involvedObject.name"], "field label not supported: involvedObject.name"),
    ("", "events", ["involvedObject.name", "source"], None),
    ("", "services", ["spec.clusterIP", "spec.type"], None),
    ("certificates.k8s.io", "certificatesigningrequests", ["spec.signerName"], None),
])
def test_unsupported_field_labels(group, plural, fields, expected) -> None:
    assert unsupported(resource_key(group, plural), fields) == expected


@pytest.mark.parametrize("resource, label, stored", [
    ("events.events.k8s.io", "regarding.kind", "involvedObject.kind"),
    ("events.events.k8s.io", "regarding.namespace", "involvedObject.namespace"),
    ("events.events.k8s.io", "regarding.name", "involvedObject.name"),
    ("events.events.k8s.io", "regarding.uid", "involvedObject.uid"),
    ("events.events.k8s.io", "regarding.apiVersion", "involvedObject.apiVersion"),
    ("events.events.k8s.io", "regarding.resourceVersion", "involvedObject.resourceVersion"),
    ("events.events.k8s.io", "regarding.fieldPath", "involvedObject.fieldPath"),
    ("events.events.k8s.io", "reportingController", "reportingComponent"),
    ("events.events.k8s.io", "reason", "reason"),
    ("events.events.k8s.io", "type", "type"),
    ("events.events.k8s.io", "metadata.name", "metadata.name"),
    ("events", "involvedObject.name", "involvedObject.name"),
    ("pods", "spec.nodeName", "spec.nodeName"),
])
def test_view_field_labels_convert_to_the_stored_resource(resource, label, stored) -> None:
    """events.k8s.io/v1 selects by its own labels, matched against the stored core Event's."""
    assert label in supported_fields(resource)
    assert convert_label(resource, label) == stored
    assert stored in supported_fields(stored_resource(resource))
