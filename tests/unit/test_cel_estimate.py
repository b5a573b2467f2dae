"""The static CEL cost estimate (``machinery/celestimate.py``) and the CRD-write checks built on
it (``crd/rules.check_rules``): never below the runtime's charge on the largest object a schema
admits, Kubernetes' verdicts and messages on the rules of its documentation."""

from __future__ import annotations

import pytest

from controlplane.apiserver.crd.rules import check_rules
from controlplane.apiserver.meta.names import Errors
from controlplane.machinery import cel, celcost, cellibs
from controlplane.machinery import celestimate as ce


def _runtime_cost(expr: str, value: object) -> int:
    tracker = celcost.Tracker(10**12)
    token = celcost.CURRENT.set(tracker)
    try:
        cel.compile_expression(expr).evaluate({**cellibs.NAMESPACES, "self": cel.to_cel(value)})
    finally:
        celcost.CURRENT.reset(token)
    return tracker.cost


def _obj(**props: dict) -> dict:
    return {"type": "object", "properties": props}


def _strs(items: int, length: int) -> dict:
    return {"type": "array", "maxItems": items, "items": {"type": "string", "maxLength": length}}


INT = {"type": "integer"}
S200 = {"type": "string", "maxLength": 200}


# (rule, schema, the largest (or a costly) value the schema admits)
@pytest.mark.parametrize("rule,schema,value", [
    ("self.minReplicas <= self.replicas", _obj(minReplicas=INT, replicas=INT), {"minReplicas": 1, "replicas": 3}),
    ("self.all(x, x.size() < 10)", _strs(100, 50), ["a" * 50] * 100),
    ("self.all(x, x.contains('a string'))", _strs(25, 10), ["b" * 10] * 25),
    ("self.map(x, x + 'abc').all(y, y.startsWith('a'))", _strs(20, 100), ["b" * 100] * 20),
    ("self.l.all(x, self.l.exists(y, x == y))", _obj(l=_strs(30, 100)), {"l": ["c" * 100] * 30}),
    ("self.m.all(k, self.m[k] > 0 && k.size() < 5)",
     _obj(m={"type": "object", "maxProperties": 40, "additionalProperties": INT}), {"m": {f"k{i}": 1 for i in range(40)}}),
    ("has(self.a) ? self.a.split(',').size() < 3 : self.b.lowerAscii() == 'x'", _obj(a=S200, b=S200), {"a": "," * 200}),
    ("has(self.a) ? self.a.split(',').size() < 3 : self.b.lowerAscii() == 'x'", _obj(a=S200, b=S200), {"b": "X" * 200}),
    ("self.?a.orValue('') + self.b == 'xy'", _obj(a=S200, b=S200), {"a": "x" * 200, "b": "y" * 200}),
    ("[1, 2, 3].all(i, i in self.l) && self.l.filter(x, x > 1).size() > 0 && -self.l[0] < 0 && !(self.l[1] == 2)",
     _obj(l={"type": "array", "maxItems": 50, "items": INT}), {"l": list(range(50))}),
    ("self.s.matches('^[a-z]+$') && self.s.replace('a', 'bb').size() > 1 && self.l.join(',').size() > 0",
     _obj(s={"type": "string", "maxLength": 300}, l=_strs(10, 30)), {"s": "a" * 300, "l": ["z" * 30] * 10}),
    ("self.items.all(i, i.tags.all(t, t.size() <= 63) && i.tags.exists_one(t, t == 'main'))",
     _obj(items={"type": "array", "maxItems": 8, "items": _obj(tags=_strs(16, 63))}),
     {"items": [{"tags": ["t" * 63] * 16}] * 8}),
    ("self.l.filter(x, x.startsWith('a')).map(x, x.upperAscii()) == self.l",
     _obj(l=_strs(40, 40)), {"l": ["a" * 40] * 40}),
    ("isURL(self.u) && url(self.u).getHost().endsWith('.example.com')", _obj(u=S200),
     {"u": "https://" + "h" * 180 + ".example.com"}),
])
def test_estimate_is_never_below_the_runtime_cost(rule: str, schema: dict, value: object) -> None:
    runtime = _runtime_cost(rule, value)
    assert runtime > 0
    assert ce.estimate_rule(rule, schema) >= runtime


def _check(schema: dict) -> list[dict[str, str]]:
    errs = Errors()
    check_rules({"type": "object", "properties": {"spec": schema}}, "openAPIV3Schema", errs)
    return errs.causes


def _with_rule(schema: dict, rule: str) -> dict:
    return {**schema, "x-kubernetes-validations": [{"rule": rule}]}


HINT = ("(try simplifying the rule, or adding maxItems, maxProperties, and maxLength where arrays, maps, "
        "and strings are declared)")
RULE = "openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule"


# rules of the Kubernetes documentation ("Validation rules", "Resource use by validation functions")
@pytest.mark.parametrize("schema,rule,refused", [
    (_obj(minReplicas=INT, replicas=INT, maxReplicas=INT),
     "self.minReplicas <= self.replicas && self.replicas <= self.maxReplicas", None),
    (_obj(x=S200), "self.x.startsWith('kube')", None),
    (_obj(x={"type": "string"}), "self.x.startsWith('kube')", None),  # cost by the literal's size
    (_obj(x={"type": "string"}), "self.x.matches('^[a-z]+$')", None),  # 314,574 x 3
    (_obj(l=_strs(100, 50)), "self.l.all(x, x.size() < 10)", None),
    ({"type": "array", "items": {"type": "string"}}, "self.all(x, x.size() < 10)",
     "estimated rule cost exceeds budget by factor of 7.3x"),
    ({"type": "array", "maxItems": 25, "items": {"type": "string", "maxLength": 10}},
     "self.all(x, x.contains('a string'))", None),
    ({"type": "array", "items": {"type": "string"}}, "self.all(x, x.contains('a string'))",
     "estimated rule cost exceeds budget by factor of more than 100x"),
    ({"type": "array", "maxItems": 1000, "items": {"type": "string", "maxLength": 1000}},
     "self.all(x, self.exists(y, x == y))", "estimated rule cost exceeds budget by factor of more than 100x"),
    (_obj(m={"type": "object", "additionalProperties": INT}), "self.m.all(k, self.m[k] >= 0)",
     "estimated rule cost exceeds budget by factor of 4.9x"),
    (_obj(m={"type": "object", "maxProperties": 64, "additionalProperties": INT}),
     "self.m.all(k, self.m[k] >= 0)", None),
    (_obj(s={"type": "string"}), "self.s + self.s + self.s + self.s == 'x'",
     "estimated rule cost exceeds budget by factor of 2.8x"),
])
def test_rules_refused_as_kubernetes_refuses_them(schema: dict, rule: str, refused: str | None) -> None:
    causes = _check(_with_rule(schema, rule))
    if refused is None:
        assert causes == []
    else:
        assert causes[0] == {"reason": "FieldValueForbidden", "field": RULE, "message": f"Forbidden: {refused} {HINT}"}
        # a rule beyond the whole CRD's limit (100x the per-call one) also fails the total
        assert [c["field"] for c in causes[1:]] in ([], [RULE, "openAPIV3Schema"])


def test_message_expression_estimated_too() -> None:
    schema = {"type": "array", "items": {"type": "string"},
              "x-kubernetes-validations": [{"rule": "self.size() < 5", "messageExpression": "self.join(', ')"}]}
    causes = _check(schema)
    assert causes[0]["field"] == "openAPIV3Schema.properties[spec].x-kubernetes-validations[0].messageExpression"
    assert causes[0]["message"].startswith("Forbidden: estimated messageExpression cost exceeds budget by factor of ")


def test_total_cost_multiplied_by_cardinality() -> None:
    """Each rule fits one call, but under an unbounded list its cost counts once per item the
    largest request could hold: the CRD's total is refused; with maxItems it fits."""
    item = _with_rule(_obj(l={"type": "array", "maxItems": 20, "items": INT}), "self.l.all(x, x > 0)")
    assert ce.estimate_rule("self.l.all(x, x > 0)", item) < ce.PER_CALL_LIMIT
    causes = _check(_obj(items={"type": "array", "items": item}))
    assert causes == [
        {"reason": "FieldValueForbidden",
         "field": "openAPIV3Schema.properties[spec].properties[items].items.x-kubernetes-validations[0].rule",
         "message": "Forbidden: contributed to estimated rule & messageExpression cost total exceeding cost limit "
                    "for entire OpenAPIv3 schema"},
        {"reason": "FieldValueForbidden", "field": "openAPIV3Schema",
         "message": "Forbidden: x-kubernetes-validations estimated rule & messageExpression cost total for entire "
                    f"OpenAPIv3 schema exceeds budget by factor of 1.405092x {HINT}"}]
    assert _check(_obj(items={"type": "array", "maxItems": 1000, "items": item})) == []


@pytest.mark.parametrize("cost,text", [
    (1_000_001, "1.000001x"), (1_400_000, "1.400000x"), (1_500_000, "1.5x"), (8_388_613, "8.4x"),
    (100_000_000, "100.0x"), (100_000_001, "more than 100x"),
])
def test_cost_error_message_factor(cost: int, text: str) -> None:
    assert ce.cost_error_message("estimated rule cost", cost, ce.PER_CALL_LIMIT) == \
        f"estimated rule cost exceeds budget by factor of {text} {HINT}"


@pytest.mark.parametrize("schema,size", [
    ({"type": "string", "maxLength": 10}, 10),
    ({"type": "string"}, 3 * 1024 * 1024 - 2),
    ({"type": "array", "maxItems": 5, "items": INT}, 5),
    ({"type": "array", "items": {"type": "string"}}, (3 * 1024 * 1024 - 2) // 3),
    ({"type": "array", "items": {"type": "boolean"}}, (3 * 1024 * 1024 - 2) // 5),
    ({"type": "array", "items": _obj(name={"type": "string"}) | {"required": ["name"]}},
     (3 * 1024 * 1024 - 2) // (2 + 4 + 2 + 4 + 1)),
    ({"type": "object", "additionalProperties": INT}, (3 * 1024 * 1024 - 2) // 7),
    ({"type": "object", "maxProperties": 3, "additionalProperties": INT}, 3),
    (_obj(a=INT, b=INT), 5),
    (INT, 0),
])
def test_max_size(schema: dict, size: int) -> None:
    assert ce.max_size(schema) == size
