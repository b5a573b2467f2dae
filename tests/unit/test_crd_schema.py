"""Custom resources against structural schemas: pruning, defaulting, 422 causes."""

from __future__ import annotations

import pytest

from controlplane.apiserver.crd.schema import validate_and_prune
from controlplane.apiserver.meta.errors import ApiError

SCHEMA = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["cronSpec"],
            "properties": {
                "cronSpec": {"type": "string", "pattern": r"^(\d+|\*)(/\d+)?(\s+(\d+|\*)(/\d+)?){4}$"},
                "image": {"type": "string", "minLength": 1, "maxLength": 20},
                "replicas": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1},
                "mode": {"type": "string", "enum": ["fast", "slow"], "default": "slow"},
                "port": {"x-kubernetes-int-or-string": True},
                "ratio": {"type": "number", "exclusiveMinimum": True, "minimum": 0},
                "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3,
                         "x-kubernetes-list-type": "set"},
                "env": {"type": "object", "additionalProperties": {"type": "string"}},
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "note": {"type": "string", "nullable": True},
                "template": {"type": "object", "x-kubernetes-embedded-resource": True,
                             "x-kubernetes-preserve-unknown-fields": True},
                "items": {"type": "array", "items": {
                    "type": "object", "required": ["name"],
                    "properties": {"name": {"type": "string"}, "size": {"type": "integer", "default": 5}}}},
            },
        },
        "status": {"type": "object", "properties": {"ok": {"type": "boolean"}}},
    },
}


def cr(**spec):
    return {"apiVersion": "stable.example.com/v1", "kind": "CronTab",
            "metadata": {"name": "c1", "namespace": "default", "labels": {"a": "b"}},
            "spec": {"cronSpec": "* * * * */5", **spec}}


def test_valid_object_gets_defaults_and_keeps_metadata():
    out = validate_and_prune(cr(items=[{"name": "x"}]), SCHEMA, kind="CronTab")
    assert out["spec"]["replicas"] == 1 and out["spec"]["mode"] == "slow"
    assert out["spec"]["items"] == [{"name": "x", "size": 5}]
    assert out["metadata"]["labels"] == {"a": "b"} and out["apiVersion"] == "stable.example.com/v1"


def test_unknown_fields_are_pruned_except_preserved():
    obj = cr(bogus=1, extra={"anything": {"deep": 1}}, env={"A": "1"},
             template={"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}})
    obj["topLevel"] = "x"
    obj["status"] = {"ok": True, "unknown": 1}
    out = validate_and_prune(obj, SCHEMA, kind="CronTab")
    assert "bogus" not in out["spec"] and "topLevel" not in out
    assert out["spec"]["extra"] == {"anything": {"deep": 1}} and out["spec"]["env"] == {"A": "1"}
    assert out["spec"]["template"]["metadata"] == {"name": "p"}
    assert out["status"] == {"ok": True}


def test_nulls_pruned_unless_nullable_then_defaulted():
    out = validate_and_prune(cr(replicas=None, note=None), SCHEMA, kind="CronTab")
    assert out["spec"]["replicas"] == 1 and out["spec"]["note"] is None


def test_input_not_mutated():
    obj = cr(bogus=1)
    validate_and_prune(obj, SCHEMA, kind="CronTab")
    assert obj["spec"]["bogus"] == 1


@pytest.mark.parametrize("spec,field,reason", [
    ({"replicas": "three"}, "spec.replicas", "FieldValueTypeInvalid"),
    ({"replicas": 0}, "spec.replicas", "FieldValueInvalid"),
    ({"replicas": 11}, "spec.replicas", "FieldValueInvalid"),
    ({"replicas": 1.5}, "spec.replicas", "FieldValueTypeInvalid"),
    ({"mode": "medium"}, "spec.mode", "FieldValueNotSupported"),
    ({"cronSpec": "often"}, "spec.cronSpec", "FieldValueInvalid"),
    ({"image": ""}, "spec.image", "FieldValueInvalid"),
    ({"image": "x" * 21}, "spec.image", "FieldValueTooLong"),
    ({"port": True}, "spec.port", "FieldValueTypeInvalid"),
    ({"ratio": 0}, "spec.ratio", "FieldValueInvalid"),
    ({"tags": ["a", "a"]}, "spec.tags[1]", "FieldValueDuplicate"),
    ({"tags": ["a", "b", "c", "d"]}, "spec.tags", "FieldValueTooMany"),
    ({"env": {"A": 1}}, "spec.env[A]", "FieldValueTypeInvalid"),
    ({"items": [{"size": 1}]}, "spec.items[0].name", "FieldValueRequired"),
    ({"template": {"metadata": {}}}, "spec.template.apiVersion", "FieldValueRequired"),
], ids=lambda x: x if isinstance(x, str) else None)
def test_invalid_values_422(spec, field, reason):
    with pytest.raises(ApiError) as exc:
        validate_and_prune(cr(**spec), SCHEMA, kind="CronTab", group="stable.example.com")
    e = exc.value
    assert e.code == 422 and e.reason == "Invalid"
    assert e.message.startswith('CronTab.stable.example.com "c1" is invalid: ')
    assert any(c["field"] == field and c["reason"] == reason for c in e.details["causes"]), e.details


def test_required_and_type_messages_match_kubernetes():
    obj = cr()
    del obj["spec"]["cronSpec"]
    obj["spec"]["replicas"] = "x"
    with pytest.raises(ApiError) as exc:
        validate_and_prune(obj, SCHEMA, kind="CronTab", group="stable.example.com")
    msgs = {c["field"]: c["message"] for c in exc.value.details["causes"]}
    assert msgs["spec.cronSpec"] == "Required value"
    assert msgs["spec.replicas"] == ('Invalid value: "string": spec.replicas in body must be of type '
                                     'integer: "string"')


@pytest.mark.parametrize("value,stored", [(3, 3), ("80%", "80%"), (None, "<pruned>")],
                         ids=["int", "string", "null-pruned"])
def test_int_or_string_accepts_ints_and_strings(value, stored):
    out = validate_and_prune(cr(port=value), SCHEMA, kind="CronTab")
    assert out["spec"].get("port", "<pruned>") == stored


@pytest.mark.parametrize("value", [True, 1.5, {"a": 1}, [1]], ids=["bool", "float", "object", "array"])
def test_int_or_string_rejects_other_types(value):
    with pytest.raises(ApiError) as exc:
        validate_and_prune(cr(port=value), SCHEMA, kind="CronTab", group="stable.example.com")
    assert exc.value.code == 422
    assert [(c["field"], c["reason"]) for c in exc.value.details["causes"]] == [("spec.port", "FieldValueTypeInvalid")]


def test_logic_combinators():
    schema = {"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "a": {"type": "integer"}, "b": {"type": "integer"}},
        "oneOf": [{"required": ["a"]}, {"required": ["b"]}]}}}
    validate_and_prune({"spec": {"a": 1}}, schema, kind="X")
    for spec in ({"a": 1, "b": 2}, {}):
        with pytest.raises(ApiError):
            validate_and_prune({"spec": spec}, schema, kind="X")


def test_no_schema_keeps_everything():
    obj = {"spec": {"x": 1}}
    assert validate_and_prune(obj, None, kind="X") == obj


def test_unknown_fields_strict_is_400_else_warnings():
    obj = cr(bogus=1, items=[{"name": "a", "extra": 2}])
    with pytest.raises(ApiError) as exc:
        validate_and_prune(obj, SCHEMA, kind="CronTab", strict=True)
    assert exc.value.code == 400
    assert exc.value.message == ('CronTab in version "v1" cannot be handled as a CronTab: strict decoding '
                                 'error: unknown field "spec.bogus", unknown field "spec.items[0].extra"')
    warnings: list[str] = []
    out = validate_and_prune(obj, SCHEMA, kind="CronTab", warnings=warnings)
    assert warnings == ['unknown field "spec.bogus"', 'unknown field "spec.items[0].extra"']
    assert "bogus" not in out["spec"]


RATCHET = {"type": "object", "properties": {"spec": {"type": "object", "properties": {
    "image": {"type": "string", "maxLength": 5},
    "size": {"type": "integer", "maximum": 10},
    "flag": {"type": "integer", "maximum": 0},
    "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
              "items": {"type": "object", "properties": {"name": {"type": "string"},
                                                         "port": {"type": "integer", "maximum": 100}}}},
    "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string", "maxLength": 3}},
    "args": {"type": "array", "items": {"type": "string", "maxLength": 3}},
    "env": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 3}},
    "rule": {"type": "string", "x-kubernetes-validations": [{"rule": "self.size() < 4", "message": "short"}]},
}}}}


def _w(**spec):
    return {"apiVersion": "ex.io/v1", "kind": "W", "metadata": {"name": "w"}, "spec": spec}


def _fields(obj, old):
    try:
        validate_and_prune(obj, RATCHET, kind="W", group="ex.io", old=old)
    except ApiError as e:
        return [c["field"] for c in e.details["causes"]]
    return []


@pytest.mark.parametrize("new,old,want", [
    # an invalid value left unchanged on update is accepted; a changed one is not
    (_w(image="toolong", size=1), _w(image="toolong", size=2), []),
    (_w(image="toolong2", size=1), _w(image="toolong", size=1), ["spec.image"]),
    # on create nothing is ratcheted
    (_w(image="toolong"), None, ["spec.image"]),
    # map-list items correlate by key, whatever their order
    (_w(ports=[{"name": "b", "port": 1}, {"name": "a", "port": 500}]),
     _w(ports=[{"name": "a", "port": 500}]), []),
    (_w(ports=[{"name": "a", "port": 501}]), _w(ports=[{"name": "a", "port": 500}]), ["spec.ports[0].port"]),
    # set items correlate by value; atomic lists' items do not correlate
    (_w(tags=["ok", "toolong"]), _w(tags=["toolong"]), []),
    (_w(args=["ok", "toolong"]), _w(args=["toolong"]), ["spec.args[1]"]),
    # maps by key
    (_w(env={"A": "toolong", "B": "x"}), _w(env={"A": "toolong"}), []),
    # equal as JSON only: true is not 1
    (_w(flag=1), {"apiVersion": "ex.io/v1", "kind": "W", "metadata": {"name": "w"}, "spec": {"flag": True}},
     ["spec.flag"]),
    # CEL rules without oldSelf are ratcheted too
    (_w(rule="toolong", size=3), _w(rule="toolong", size=1), []),
    (_w(rule="toolong2"), _w(rule="toolong"), ["spec.rule"]),
])
def test_validation_ratcheting(new, old, want):
    assert _fields(new, old) == want
