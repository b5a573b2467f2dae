"""``x-kubernetes-validations``: the CEL rules of a CRD's schema, evaluated on a custom resource
as apiextensions-apiserver's CEL validator does, after the structural validation found nothing
blocking (no type or required-field error).

At every schema node that carries rules and whose value is present, each rule runs with ``self``
bound to that value (and ``oldSelf`` to the same node of the stored object on an update). A rule
that mentions ``oldSelf`` is a *transition rule*: it runs only on an update where the old value
exists at that node (``optionalOldSelf`` is not supported). Old values are found through object
properties, maps (``additionalProperties``) by key and ``x-kubernetes-list-type: map`` lists by
their keys; items of other lists have no old value. On an update, a rule that does not use
``oldSelf`` is not run where the value equals its old value (validation ratcheting, as
``schema.py``). A rule that is false gives
``<path>: Invalid value: "<type>": <message>`` (``message``, a ``messageExpression`` that gives a
string, else ``failed rule: <rule>``), or Forbidden / Required / Duplicate per ``reason``, at the
node's path plus ``fieldPath``; a rule that cannot be evaluated gives ``Invalid value`` with the
evaluation error. The CRD's rules are compiled when the CRD is written (``check_rules``).

Engine: ``controlplane.machinery.cel`` (cel-python): the standard library and macros, and Kubernetes'
CEL extension libraries (``machinery.cellibs``: quantity, url, ip/cidr, lists, strings, sets, regex).
Each evaluation stops at Kubernetes' per-call cost limit and the rules of one object share its
runtime budget (``machinery.celcost``): a rule stopped at the limit gives ``Invalid value:
"<type>": 'operation cancelled: actual cost limit exceeded': call cost exceeds limit for rule:
<message or rule>``; once the budget is spent, ``validation failed due to running out of cost
budget, no further validation rules will be run`` and no other rule runs. When the CRD is written,
``check_rules`` refuses rules whose estimated worst-case cost (``machinery.celestimate``, from
the schema's maxLength / maxItems / maxProperties) exceeds the per-call limit, and a schema
whose rules together exceed ``StaticEstimatedCRDCostLimit``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from controlplane.apiserver.crd.ratchet import map_list_key, same_json
from controlplane.apiserver.meta.names import Errors
from controlplane.machinery import cel, celcost, celestimate, celoptional

Obj = dict[str, Any]
_OLD_SELF = re.compile(r"\boldSelf\b")
_MISSING = object()
_NO_MEMBER = re.compile(r"no such member in mapping: '([^']*)'")


def has_rules(schema: Any) -> bool:
    """Whether any node of ``schema`` carries ``x-kubernetes-validations``."""
    if not isinstance(schema, dict):
        return False
    if schema.get("x-kubernetes-validations"):
        return True
    subs = list((schema.get("properties") or {}).values())
    for k in ("items", "additionalProperties"):
        if isinstance(schema.get(k), dict):
            subs.append(schema[k])
    for k in ("allOf", "anyOf", "oneOf"):
        subs.extend(x for x in schema.get(k) or [] if isinstance(x, dict))
    return any(has_rules(s) for s in subs)


def _type_name(value: Any, schema: Obj) -> str:
    t = schema.get("type")
    if t:
        return str(t)
    if schema.get("x-kubernetes-int-or-string"):
        return "integer" if isinstance(value, int) else "string"
    return {dict: "object", list: "array", str: "string", bool: "boolean"}.get(type(value), "number")


def _join(path: str, rel: str | None) -> str:
    if not rel:
        return path or "<nil>"
    rel = rel if rel.startswith((".", "[")) else f".{rel}"
    return f"{path}{rel}" if path else rel.lstrip(".")


def _rule_text(rule: Obj) -> str:
    """``ruleErrorString``: the rule's message, else the rule."""
    message = rule.get("message")
    return (message if isinstance(message, str) and message.strip() else str(rule.get("rule", ""))).strip()


def _run(rule: Obj, value: Any, old: Any, schema: Obj, path: str, errs: Errors, budget: celcost.Budget) -> None:
    text = rule.get("rule")
    if not isinstance(text, str) or not text.strip():
        return
    transition = bool(_OLD_SELF.search(text))
    optional_old = transition and rule.get("optionalOldSelf") is True
    if transition and old is _MISSING and not optional_old:
        return
    if not transition and old is not _MISSING and same_json(value, old):
        return  # ratcheting: a rule without oldSelf does not run again on an unchanged value
    activation = {"self": cel.to_cel(value)}
    if optional_old:
        activation["oldSelf"] = celoptional.NONE if old is _MISSING else celoptional.of(cel.to_cel(old))
    elif transition:
        activation["oldSelf"] = cel.to_cel(old)
    where = _join(path, rule.get("fieldPath"))
    kind = _type_name(value, schema)
    try:
        ok = cel.evaluate(text, activation, budget)
    except cel.CELCostError as e:
        if e.out_of_budget:
            errs.add("FieldValueInvalid", path or "<nil>", f"Invalid value: {json.dumps(kind)}: {e}")
        else:
            errs.add("FieldValueInvalid", where,
                     f"Invalid value: {json.dumps(kind)}: '{e}': call cost exceeds limit for rule: {_rule_text(rule)}")
        return
    except cel.CELError as e:
        # cel-python's wording of a missing field, as cel-go (Kubernetes) says it
        msg = _NO_MEMBER.sub(lambda m: f"no such key: {m.group(1)}", str(e))
        errs.add("FieldValueInvalid", where, f"Invalid value: {json.dumps(kind)}: {msg}")
        return
    if ok is True:
        return
    if ok is not False:
        errs.add("FieldValueInvalid", where, f"Invalid value: {json.dumps(kind)}: rule did not evaluate to a bool: {text}")
        return
    message = rule.get("message") or f"failed rule: {' '.join(text.split())}"
    if isinstance(rule.get("messageExpression"), str) and rule["messageExpression"].strip():
        try:
            got = cel.evaluate(rule["messageExpression"], activation, budget)
            if isinstance(got, str) and got.strip() and "\n" not in got:
                message = got
        except cel.CELCostError as e:
            if e.out_of_budget:
                errs.add("FieldValueInvalid", path or "<nil>", f"Invalid value: {json.dumps(kind)}: {e}")
                return
        except cel.CELError:
            pass
    reason = rule.get("reason") or "FieldValueInvalid"
    if reason == "FieldValueForbidden":
        errs.add(reason, where, f"Forbidden: {message}")
    elif reason == "FieldValueRequired":
        errs.add(reason, where, f"Required value: {message}")
    elif reason == "FieldValueDuplicate":
        errs.add(reason, where, f"Duplicate value: {json.dumps(kind)}")
    else:
        errs.add("FieldValueInvalid", where, f"Invalid value: {json.dumps(kind)}: {message}")


def validate(value: Any, old: Any, schema: Obj, path: str, errs: Errors, budget: celcost.Budget | None = None) -> None:
    """Run every rule of ``schema`` and its sub-schemas over ``value`` (``old``: the stored
    object's value at the same node, or ``_MISSING``), charging ``budget`` (a new runtime budget
    if None); nothing more runs once it is spent."""
    if budget is None:
        budget = celcost.Budget()
    if value is None or not isinstance(schema, dict) or budget.remaining < 0:
        return
    for rule in schema.get("x-kubernetes-validations") or []:
        if isinstance(rule, dict):
            if budget.remaining < 0:
                return
            _run(rule, value, old, schema, path, errs, budget)
    for k in ("allOf", "anyOf", "oneOf"):  # rules under these apply to the same value
        for sub in schema.get(k) or []:
            if isinstance(sub, dict) and sub.get("x-kubernetes-validations"):
                for rule in sub["x-kubernetes-validations"]:
                    if isinstance(rule, dict) and budget.remaining >= 0:
                        _run(rule, value, old, {**schema, **sub}, path, errs, budget)
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        addl = schema.get("additionalProperties")
        old_map = old if isinstance(old, dict) else {}
        for key, sub in value.items():
            child_old = old_map.get(key, _MISSING) if old is not _MISSING else _MISSING
            if key in props:
                validate(sub, child_old, props[key], f"{path}.{key}" if path else key, errs, budget)
            elif isinstance(addl, dict):
                validate(sub, child_old, addl, f"{path}[{key}]" if path else key, errs, budget)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        items = schema["items"]
        keys = schema.get("x-kubernetes-list-map-keys") or []
        old_by_key: dict[str, Any] = {}
        if schema.get("x-kubernetes-list-type") == "map" and keys and isinstance(old, list):
            for o in old:
                if isinstance(o, dict):
                    old_by_key[map_list_key(o, keys)] = o
        for i, item in enumerate(value):
            item_old = _MISSING
            if old_by_key and isinstance(item, dict):
                item_old = old_by_key.get(map_list_key(item, keys), _MISSING)
            validate(item, item_old, items, f"{path}[{i}]", errs, budget)


def validate_object(obj: Obj, old: Obj | None, schema: Obj, errs: Errors) -> None:
    """The rules of a whole custom resource (root rules at path ``<nil>``, as Kubernetes)."""
    validate(obj, old if old is not None else _MISSING, schema, "", errs)


REASONS = ("FieldValueInvalid", "FieldValueForbidden", "FieldValueRequired", "FieldValueDuplicate")


class _TotalCost:
    """apiextensions' ``TotalCost``: the sum of the CRD's rule and messageExpression estimates
    (each times its node's cardinality) and the four most expensive of them (those of at least
    1% of the per-call limit)."""

    def __init__(self) -> None:
        self.total = 0
        self.most_expensive: list[tuple[int, str]] = []

    def observe(self, path: str, cost: int) -> None:
        self.total += cost
        if cost >= celestimate.PER_CALL_LIMIT // 100:
            self.most_expensive = sorted([*self.most_expensive, (cost, path)], key=lambda c: -c[0])[:4]


def check_rules(schema: Any, path: str, errs: Errors) -> None:
    """The CRD's validation of its rules: every ``rule`` and ``messageExpression`` in
    ``schema`` compiles (``...x-kubernetes-validations[i].rule: Invalid value: "<rule>":
    compilation failed: ...``), every ``reason`` is one Kubernetes knows, and their estimated
    cost (``machinery.celestimate``) fits: one evaluation within ``PerCallLimit``
    (``...rule: Forbidden: estimated rule cost exceeds budget by factor of ...``), all of them on
    one object within ``StaticEstimatedCRDCostLimit`` (``openAPIV3Schema: Forbidden:
    x-kubernetes-validations estimated rule & messageExpression cost total for entire OpenAPIv3
    schema exceeds budget by factor of ...``)."""
    total = _TotalCost()
    _check_rules(schema, path, errs, 1, total)
    if total.total > celestimate.STATIC_CRD_COST_LIMIT:
        for _cost, where in total.most_expensive:
            errs.forbidden(where, "contributed to estimated rule & messageExpression cost total exceeding cost "
                                  "limit for entire OpenAPIv3 schema")
        errs.forbidden(path, celestimate.cost_error_message(
            "x-kubernetes-validations estimated rule & messageExpression cost total for entire OpenAPIv3 schema",
            total.total, celestimate.STATIC_CRD_COST_LIMIT))


def _check_rules(schema: Any, path: str, errs: Errors, cardinality: int | None, total: _TotalCost) -> None:
    """``cardinality``: how many times the node can occur in one object (the product of the
    bounds of the lists and maps above it), None where one of them is unbounded."""
    if not isinstance(schema, dict):
        return
    for i, rule in enumerate(schema.get("x-kubernetes-validations") or []):
        if not isinstance(rule, dict):
            continue
        where = f"{path}.x-kubernetes-validations[{i}]"
        for key in ("rule", "messageExpression"):
            if key == "messageExpression" and rule.get(key) is None:
                continue
            err = cel.compile_error(rule.get(key))
            if err is not None:
                errs.invalid(f"{where}.{key}", rule.get(key) if isinstance(rule.get(key), str) else "", err)
                continue
            cost = celestimate.estimate_rule(rule[key], schema)
            name = "estimated rule cost" if key == "rule" else "estimated messageExpression cost"
            if cost > celestimate.PER_CALL_LIMIT:
                errs.forbidden(f"{where}.{key}", celestimate.cost_error_message(name, cost, celestimate.PER_CALL_LIMIT))
            times = cardinality if cardinality is not None \
                else celestimate.max_cardinality(celestimate.min_size_json(schema))
            total.observe(f"{where}.{key}", cost * times)
        if rule.get("reason") not in (None, *REASONS):
            errs.not_supported(f"{where}.reason", rule["reason"], REASONS)
        if rule.get("optionalOldSelf") is True and isinstance(rule.get("rule"), str) \
                and not _OLD_SELF.search(rule["rule"]):
            # the wording of kube-apiserver's check as best known (not verified against its source)
            errs.invalid(f"{where}.optionalOldSelf", True, "may not be set if oldSelf is not referenced in rule")
    for key, sub in (schema.get("properties") or {}).items():
        _check_rules(sub, f"{path}.properties[{key}]", errs, cardinality, total)
    for k, bound_key in (("items", "maxItems"), ("additionalProperties", "maxProperties")):
        if isinstance(schema.get(k), dict):
            bound = schema.get(bound_key)
            child = cardinality * bound if cardinality is not None and isinstance(bound, int) and bound >= 0 else None
            _check_rules(schema[k], f"{path}.{k}", errs, child, total)
    for k in ("allOf", "anyOf", "oneOf"):
        for i, sub in enumerate(schema.get(k) or []):
            _check_rules(sub, f"{path}.{k}[{i}]", errs, cardinality, total)
