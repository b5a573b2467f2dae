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


def test_optional_old_self_must_be_used():
    errs = Errors()
    validate_crd(crd([{"rule": "self.x == 1", "optionalOldSelf": True}]), errs, False, {})
    assert [(c["field"], c["message"]) for c in errs.causes] == [
        ("spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].optionalOldSelf",
         "Invalid value: true: may not be set if oldSelf is not referenced in rule")]


OPTIONAL_OLD = {"type": "object", "properties": {"spec": {
    "type": "object", "properties": {"size": {"type": "integer"}},
    "x-kubernetes-validations": [{"rule": "!oldSelf.hasValue() || self.size >= oldSelf.value().size",
                                  "optionalOldSelf": True, "message": "size may only grow"},
                                 {"rule": "oldSelf.hasValue() || self.size < 10", "optionalOldSelf": True,
                                  "message": "start below 10"}]}}}


@pytest.mark.parametrize("new,old,want", [
    # create: the rule runs, with oldSelf none
    (5, None, []),
    (12, None, [("spec", 'Invalid value: "object": start below 10')]),
    # update: oldSelf is optional.of(old)
    (12, 5, []),
    (4, 5, [("spec", 'Invalid value: "object": size may only grow')]),
])
def test_optional_old_self(new, old, want):
    def obj(size):
        return {"apiVersion": "ex.io/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "d"},
                "spec": {"size": size}}
    try:
        validate_and_prune(obj(new), OPTIONAL_OLD, kind="Widget", group="ex.io",
                           old=obj(old) if old is not None else None)
        got = []
    except ApiError as e:
        got = [(c["field"], c["message"]) for c in e.details["causes"]]
    assert got == want


COSTLY = {"type": "object", "properties": {"spec": {"type": "object", "properties": {
    "a": {"type": "array", "items": {"type": "integer"},
          "x-kubernetes-validations": [{"rule": "self.all(x, self.all(y, x + y >= 0))", "message": "pairs"}]},
    "b": {"type": "array", "items": {"type": "integer"},
          "x-kubernetes-validations": [{"rule": "self.all(x, x >= 0)"}]},
    "c": {"type": "integer", "x-kubernetes-validations": [{"rule": "self < 0", "message": "c must be negative"}]},
}}}}


@pytest.mark.parametrize("limit,budget,spec,want", [
    # cheap enough: every rule runs (c's rule fails as usual)
    (10**6, 10**7, {"a": [1, 2], "b": [1], "c": 1}, [("spec.c", 'Invalid value: "integer": c must be negative')]),
    # a's rule stops at the per-call limit; the others still run
    (2000, 10**7, {"a": list(range(40)), "b": [1], "c": 1},
     [("spec.a", "Invalid value: \"array\": 'operation cancelled: actual cost limit exceeded': "
                 "call cost exceeds limit for rule: pairs"),
      ("spec.c", 'Invalid value: "integer": c must be negative')]),
    # the object's budget is spent by a's rule: nothing after it runs
    (10**6, 3000, {"a": list(range(40)), "b": [1], "c": 1},
     [("spec.a", 'Invalid value: "array": validation failed due to running out of cost budget, '
                 'no further validation rules will be run')]),
])
def test_runtime_cost_limit_and_budget(monkeypatch, limit, budget, spec, want):
    from controlplane.machinery import celcost
    monkeypatch.setattr(celcost, "PER_CALL_LIMIT", limit)
    monkeypatch.setattr(celcost, "RUNTIME_BUDGET", budget)
    obj = {"apiVersion": "ex.io/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "d"}, "spec": spec}
    try:
        validate_and_prune(obj, COSTLY, kind="Widget", group="ex.io")
        got = []
    except ApiError as e:
        got = [(c["field"], c["message"]) for c in e.details["causes"]]
    assert got == want
