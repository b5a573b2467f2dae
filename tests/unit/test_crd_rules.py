"""CEL validation rules of CRD schemas (``x-kubernetes-validations``, ``apiserver/crd/rules.py``),
table-driven: where rules run, what they see, and Kubernetes' messages."""

from __future__ import annotations

import pytest

from controlplane.apiserver.crd.schema import validate_and_prune
from controlplane.apiserver.crd.validation import validate_crd
from controlplane.apiserver.meta.errors import ApiError
from controlplane.apiserver.meta.names import Errors

SCHEMA = {
    "type": "object",
    "x-kubernetes-validations": [{"rule": "self.metadata.name.startsWith('w')", "message": "name must start with w"}],
    "properties": {
        "spec": {
            "type": "object",
            "x-kubernetes-validations": [
                {"rule": "self.minReplicas <= self.maxReplicas", "message": "minReplicas cannot be larger than maxReplicas"},
                {"rule": "!has(self.mode) || self.mode != 'legacy'", "reason": "FieldValueForbidden",
                 "message": "legacy mode is gone", "fieldPath": ".mode"},
                {"rule": "self.maxReplicas < 100", "messageExpression": "'maxReplicas is ' + string(self.maxReplicas)"},
                {"rule": "self.image == oldSelf.image", "message": "image is immutable"},
            ],
            "properties": {
                "minReplicas": {"type": "integer"}, "maxReplicas": {"type": "integer"},
                "mode": {"type": "string"}, "image": {"type": "string"},
                "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                          "items": {"type": "object", "required": ["name"],
                                    "x-kubernetes-validations": [{"rule": "self.port > 0"},
                                                                 {"rule": "self.port >= oldSelf.port",
                                                                  "message": "a port may only grow"}],
                                    "properties": {"name": {"type": "string"}, "port": {"type": "integer"}}}},
                "labels": {"type": "object", "additionalProperties": {
                    "type": "string", "x-kubernetes-validations": [{"rule": "size(self) <= 5"}]}},
            },
        },
    },
}


def cr(name="w1", **spec):
    base = {"minReplicas": 1, "maxReplicas": 3, "image": "a"}
    return {"apiVersion": "ex.io/v1", "kind": "Widget", "metadata": {"name": name, "namespace": "d"},
            "spec": {**base, **spec}}


def causes(obj, old=None):
    try:
        validate_and_prune(obj, SCHEMA, kind="Widget", group="ex.io", old=old)
    except ApiError as e:
        return [(c["field"], c["message"]) for c in e.details["causes"]]
    return []


@pytest.mark.parametrize("obj,want", [
    (cr(), []),
    (cr(minReplicas=5), [("spec", 'Invalid value: "object": minReplicas cannot be larger than maxReplicas')]),
    (cr(name="x1"), [("<nil>", 'Invalid value: "object": name must start with w')]),
    (cr(mode="legacy"), [("spec.mode", "Forbidden: legacy mode is gone")]),
    (cr(maxReplicas=150), [("spec", 'Invalid value: "object": maxReplicas is 150')]),
    (cr(ports=[{"name": "http", "port": 0}]), [("spec.ports[0]", 'Invalid value: "object": failed rule: self.port > 0')]),
    (cr(labels={"a": "short", "b": "toolong"}), [("spec.labels[b]", 'Invalid value: "string": failed rule: size(self) <= 5')]),
    # a rule that cannot be evaluated (no such key): its error, at the node
    ({**cr(), "spec": {"image": "a", "maxReplicas": 3}}, 'Invalid value: "object": no such key: minReplicas'),
    # a type error blocks the rules (the shape is wrong)
    (cr(minReplicas="one"), "some validation rules were not checked"),
], ids=["valid", "root-of-spec", "root", "forbidden-fieldpath", "message-expression", "list-item", "map-value",
        "eval-error", "blocked"])
def test_rules_on_create(obj, want):
    got = causes(obj)
    if isinstance(want, str):
        assert any(want in m for _, m in got), got
    else:
        assert got == want


@pytest.mark.parametrize("new,old,want", [
    (cr(image="b"), cr(), [("spec", 'Invalid value: "object": image is immutable')]),
    (cr(), cr(), []),
    # transition rules of map-list items correlate by key; a new item has no old value
    (cr(ports=[{"name": "http", "port": 80}, {"name": "dns", "port": 1}]),
     cr(ports=[{"name": "dns", "port": 53}, {"name": "http", "port": 8}]),
     [("spec.ports[1]", 'Invalid value: "object": a port may only grow')]),
    (cr(ports=[{"name": "new", "port": 1}]), cr(ports=[{"name": "http", "port": 80}]), []),
])
def test_transition_rules_on_update(new, old, want):
    assert causes(new, old) == want


def test_transition_rules_skipped_on_create():
    assert causes(cr(image="anything")) == []


def crd(rules):
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.ex.io"},
            "spec": {"group": "ex.io", "scope": "Namespaced",
                     "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                     "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                         "type": "object", "properties": {"spec": {"type": "object", "x-kubernetes-validations": rules}}}}}]}}


@pytest.mark.parametrize("rules,field", [
    ([{"rule": "self.a <"}], "spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule"),
    ([{"rule": "true", "messageExpression": "'x' +"}],
     "spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].messageExpression"),
    ([{"rule": "true", "reason": "Whatever"}],
     "spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].reason"),
])
def test_crd_rules_must_compile(rules, field):
    errs = Errors()
    validate_crd(crd(rules), errs, False, {})
    assert [c["field"] for c in errs.causes] == [field]


def test_crd_with_good_rules_is_valid():
    errs = Errors()
    validate_crd(crd([{"rule": "self.x == 1", "messageExpression": "'x is ' + string(self.x)"}]), errs, False, {})
    assert errs.causes == []
