"""cel-go's optional types (``machinery/celoptional.py``) through ``machinery.cel``: each row is an
expression over ``self`` and what Kubernetes 1.32's CEL (cel-go with ``OptionalTypes``) gives for
it (a value, an optional, or an error containing a text); then the forms that must not compile,
and CRD rules using them."""

from __future__ import annotations

import pytest

from controlplane.apiserver.crd.schema import validate_and_prune
from controlplane.apiserver.crd.validation import validate_crd
from controlplane.apiserver.meta.errors import ApiError
from controlplane.apiserver.meta.names import Errors
from controlplane.machinery import cel
from controlplane.machinery.celoptional import NONE, OptionalValue, of


class Error(str):
    """An expected evaluation error whose message contains this text."""


SELF = {"spec": {"replicas": 3, "zero": 0, "empty": "", "name": "web", "m": {"k": "v", "n": {"x": 1}},
                 "l": [10, 20], "nothing": None},
        "metadata": {"name": "w1", "labels": {"app": "web"}}}

CASES = [
    # a.?b: none when the field/key is missing, of(a.b) otherwise
    ("self.?spec.replicas", of(3)), ("self.?spec.missing", NONE), ("self.?status", NONE),
    ("self.?spec.replicas.orValue(1) > 0", True), ("self.?status.replicas.orValue(1)", 1),
    ("self.?spec.nothing", of(None)), ("self.spec.?m.k", of("v")), ("self.spec.?m.z", NONE),
    # once optional, the rest of the chain selects and indexes "if present"
    ("self.?spec.m.n.x", of(1)), ("self.?spec.m.n.y", NONE), ("self.?status.a.b.c", NONE),
    ("self.?spec.l[1]", of(20)), ("self.?spec.l[7]", NONE), ("self.?spec.m['k']", of("v")),
    ("self.?spec.m.k.orValue('d')", "v"), ("self.?spec.m.z.orValue('d')", "d"),
    # index forms
    ("self.spec.m[?'k']", of("v")), ("self.spec.m[?'z']", NONE), ("self.spec.l[?0]", of(10)),
    ("self.spec.l[?2]", NONE), ("self.spec.l[?-1]", NONE), ("self.spec.m[?'k'].value()", "v"),
    ("self.spec.l[?'a']", Error("no matching overload")),
    # the Kubernetes idioms
    ("self.metadata.?labels.orValue({})", {"app": "web"}),
    ("self.metadata.?annotations.orValue({})", {}),
    ("self.metadata.?labels.app.orValue('') == 'web'", True),
    ("self.metadata.?annotations.owner.orValue('nobody')", "nobody"),
    ("self.metadata.?labels.orValue({}).all(k, k.startsWith('a'))", True),
    ("self.spec.?replicas.hasValue() && !self.spec.?minReplicas.hasValue()", True),
    # constructors
    ("optional.of(1)", of(1)), ("optional.none()", NONE), ("optional.of(optional.none())", of(NONE)),
    ("optional.ofNonZeroValue(self.spec.replicas)", of(3)), ("optional.ofNonZeroValue(self.spec.zero)", NONE),
    ("optional.ofNonZeroValue(self.spec.empty)", NONE), ("optional.ofNonZeroValue([])", NONE),
    ("optional.ofNonZeroValue({})", NONE), ("optional.ofNonZeroValue(false)", NONE),
    ("optional.ofNonZeroValue(null)", NONE), ("optional.ofNonZeroValue(0.0)", NONE),
    ("optional.ofNonZeroValue(0u)", NONE), ("optional.ofNonZeroValue(duration('0s'))", NONE),
    ("optional.ofNonZeroValue([0])", of([0])),
    ("optional.ofNonZeroValue(self.spec.name).orValue('x')", "web"),
    ("optional.of(1/0)", Error("divide by zero")),
    # hasValue, value
    ("optional.of(1).hasValue()", True), ("optional.none().hasValue()", False), ("optional.of(2).value()", 2),
    ("optional.none().value()", Error("optional.none() dereference")),
    ("self.?status.value()", Error("optional.none() dereference")),
    ("self.spec.replicas.hasValue()", Error("no such overload")), ("(1).value()", Error("no such overload")),
    # or / orValue: the argument only when the receiver is none
    ("optional.of(1).or(optional.of(2))", of(1)), ("optional.none().or(optional.of(2))", of(2)),
    ("optional.none().or(optional.none())", NONE), ("self.?status.or(self.?spec).value().replicas", 3),
    ("optional.none().orValue(5)", 5), ("optional.of(1).orValue(1/0)", 1),
    ("optional.of(1).or(1/0)", of(1)), ("optional.none().orValue(1/0)", Error("divide by zero")),
    ("optional.none().or(2)", Error("no such overload")), ("self.spec.replicas.orValue(1)", Error("no such overload")),
    # select/index on an optional value outside a chain
    ("optional.of({'a': 1}).a", of(1)), ("optional.of({'a': 1}).b", NONE), ("optional.none().a", NONE),
    ("optional.of([1, 2])[1]", of(2)), ("optional.of(1).a", Error("does not support field selection")),
    ("self.spec.replicas.?a", Error("does not support field selection")),
    # optional list elements and map entries: kept only when present
    ("[?optional.none(), 1, ?optional.of(2)]", [1, 2]), ("[?self.?status, ?self.spec.?name]", ["web"]),
    ("[?optional.none()]", []), ("[?1]", Error("cannot initialize optional list element from non-optional value")),
    ("{?'a': optional.none(), 'b': 1, ?'c': optional.of(3)}", {"b": 1, "c": 3}),
    ("{?'app': self.metadata.?labels.app}", {"app": "web"}), ("{?'x': self.?status}", {}),
    ("{?'a': 1}", Error("cannot initialize optional entry 'a' from non-optional value")),
    ("{?'a': optional.of(1), 'a': 2}", Error("Duplicate key")),
    ("google.protobuf.Struct{?fields: optional.none()}", {}),
    ("google.protobuf.Struct{?fields: optional.of({'a': 1})}", {"fields": {"a": 1}}),
    # equality
    ("optional.of(1) == optional.of(1)", True), ("optional.of(1) == optional.of(2)", False),
    ("optional.none() == optional.none()", True), ("optional.of(1) != optional.none()", True),
    ("self.?spec.replicas == optional.of(3)", True),
    # what worked before still does
    ("self.spec.replicas > 2 ? [1, 2] : {'a': 1}", [1, 2]), ("self.spec.missing", Error("no such member")),
    ("has(self.spec.m) && !has(self.status)", True), ("[1, 2, 3].filter(x, x > 1)", [2, 3]),
    ("{'a': 1, 'a': 2}", Error("Duplicate key")), ("self.spec.l[5]", Error("invalid_argument")),
]


@pytest.mark.parametrize("expr,want", CASES, ids=[c[0] for c in CASES])
def test_optional(expr: str, want: object) -> None:
    act = {"self": cel.to_cel(SELF)}
    if isinstance(want, Error):
        with pytest.raises(cel.CELError) as e:
            cel.evaluate(expr, act)
        assert str(want) in str(e.value)
    else:
        got = cel.evaluate(expr, act)
        assert got == want and type(got) is type(want), (got, want)
        if isinstance(want, OptionalValue) and want.has_value and not isinstance(want.value, OptionalValue):
            assert cel.evaluate("x.value()", {"x": cel.to_cel(got)}) == want.value


@pytest.mark.parametrize("expr,error", [
    ("self.?", "compilation failed"), ("self.?1", "compilation failed"), ("self[?]", "compilation failed"),
    ("f(?x)", "compilation failed"), ("self.?a(1)", "compilation failed"), ("[?]", "compilation failed"),
    ("has(self.?spec)", "invalid argument to has() macro"), ("has(self.spec[?'a'])", "invalid argument to has() macro"),
])
def test_does_not_compile(expr: str, error: str) -> None:
    assert error in (cel.compile_error(expr) or "")


@pytest.mark.parametrize("expr", [
    "self.?spec.replicas.orValue(1) > 0", "object.metadata.?labels.orValue({})", "self[?'key']",
    "optional.of(x)", "optional.none()", "optional.ofNonZeroValue(x)", "a.?b.hasValue()", "a.?b.value()",
    "a.?b.or(c.?d)", "l[?0]", "[?a, b]", "{?'k': optional.none()}", "a ? b : c", "a.?b ? c : d",
])
def test_compiles(expr: str) -> None:
    assert cel.compile_error(expr) is None


def test_optional_variable_round_trips() -> None:
    """A ValidatingAdmissionPolicy variable may hold an optional: it goes back into CEL as one."""
    labels = cel.evaluate("object.metadata.?labels", {"object": cel.to_cel({"metadata": {}})})
    assert labels == NONE
    act = {"variables": cel.to_cel({"labels": labels})}
    assert cel.evaluate("variables.labels.orValue({'a': 'b'}).a", act) == "b"
    assert cel.evaluate("variables.labels.hasValue()", act) is False


SCHEMA = {"type": "object", "properties": {"spec": {
    "type": "object",
    "x-kubernetes-validations": [
        {"rule": "self.?replicas.orValue(1) > 0", "message": "replicas must be positive"},
        {"rule": "self.?limits.max.orValue(10) >= self.?limits.min.orValue(0)", "message": "min above max"},
        {"rule": "!self.?mode.hasValue() || self.mode in ['a', 'b']",
         "messageExpression": "'mode ' + self.?mode.orValue('') + ' is not known'"},
    ],
    "properties": {"replicas": {"type": "integer"}, "mode": {"type": "string"},
                   "limits": {"type": "object", "properties": {"min": {"type": "integer"}, "max": {"type": "integer"}}}}}}}


def _causes(spec: dict) -> list[tuple[str, str]]:
    obj = {"apiVersion": "ex.io/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "d"}, "spec": spec}
    try:
        validate_and_prune(obj, SCHEMA, kind="Widget", group="ex.io")
    except ApiError as e:
        return [(c["field"], c["message"]) for c in e.details["causes"]]
    return []


@pytest.mark.parametrize("spec,want", [
    ({}, []), ({"replicas": 2, "mode": "a", "limits": {"min": 1, "max": 3}}, []),
    ({"replicas": 0}, [("spec", 'Invalid value: "object": replicas must be positive')]),
    ({"limits": {"min": 11}}, [("spec", 'Invalid value: "object": min above max')]),
    ({"limits": {"max": -1}}, [("spec", 'Invalid value: "object": min above max')]),
    ({"mode": "c"}, [("spec", 'Invalid value: "object": mode c is not known')]),
], ids=["empty", "all-set", "zero-replicas", "min-default-max", "max-below-default-min", "mode"])
def test_crd_rules_with_optionals(spec: dict, want: list) -> None:
    assert _causes(spec) == want


def test_crd_with_optional_rules_is_valid() -> None:
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "widgets.ex.io"},
           "spec": {"group": "ex.io", "scope": "Namespaced",
                    "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                    "versions": [{"name": "v1", "served": True, "storage": True,
                                  "schema": {"openAPIV3Schema": SCHEMA}}]}}
    errs = Errors()
    validate_crd(crd, errs, False, {})
    assert errs.causes == []
