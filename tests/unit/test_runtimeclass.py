"""RuntimeClass rules: the kind's validation (``validation/node.py``) and the pod fields it
feeds (``runtimeClassName``, ``overhead``) with Kubernetes' causes, and the RuntimeClass
admission plugin's toleration merge (``tolerations.MergeTolerations``/``isSuperset``)."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.apiserver.admission.runtimeclass import is_superset, merge_tolerations
from controlplane.apiserver.meta.names import Errors
from controlplane.apiserver.validation.node import runtime_class
from controlplane.apiserver.validation.pods import validate_pod_spec

_LABEL = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
          "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
          "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
_GE0 = "must be greater than or equal to 0"

RC_CASES: list[tuple[str, dict[str, Any], dict[str, Any] | None, list[tuple[str, str, str]]]] = [
    ("valid", {"handler": "runc", "overhead": {"podFixed": {"cpu": "250m"}},
               "scheduling": {"nodeSelector": {"a": "b"}, "tolerations": [{"key": "k", "operator": "Exists"}]}},
     None, []),
    ("no handler", {}, None, [("FieldValueRequired", "handler", "Required value")]),
    ("handler not a label", {"handler": "Run.C"}, None,
     [("FieldValueInvalid", "handler", f'Invalid value: "Run.C": {_LABEL}')]),
    ("handler changed", {"handler": "kata"}, {"handler": "runc"},
     [("FieldValueInvalid", "handler", 'Invalid value: "kata": field is immutable')]),
    ("handler kept", {"handler": "runc"}, {"handler": "runc"}, []),
    ("negative overhead", {"handler": "runc", "overhead": {"podFixed": {"memory": "-1Mi"}}}, None,
     [("FieldValueInvalid", "overhead.limits[memory]", f'Invalid value: "-1Mi": {_GE0}')]),
    ("toleration operator", {"handler": "runc", "scheduling": {"tolerations": [{"key": "k", "operator": "In"}]}},
     None, [("FieldValueNotSupported", "scheduling.tolerations.tolerations[0].operator",
             'Unsupported value: "In": supported values: "Equal", "Exists"')]),
    ("duplicate toleration", {"handler": "runc", "scheduling": {"tolerations": [{"key": "k"}, {"key": "k"}]}},
     None, [("FieldValueDuplicate", "scheduling.tolerations[1]", 'Duplicate value: {"key": "k"}')]),
]


@pytest.mark.parametrize("name,obj,old,causes", RC_CASES, ids=[c[0] for c in RC_CASES])
def test_runtime_class_causes(name, obj, old, causes):
    errs = Errors()
    runtime_class({"metadata": {"name": "x"}, **obj}, errs, old is not None, old or {})
    assert [(c["reason"], c["field"], c["message"]) for c in errs.causes] == causes


POD_CASES: list[tuple[str, dict[str, Any], list[tuple[str, str, str]]]] = [
    ("class and overhead", {"runtimeClassName": "gvisor.io", "overhead": {"cpu": "100m"}}, []),
    ("class name", {"runtimeClassName": "Not Valid"},
     [("FieldValueInvalid", "spec.runtimeClassName",
       "Invalid value: \"Not Valid\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
       "characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "
       "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")]),
    ("negative overhead", {"overhead": {"cpu": "-100m"}},
     [("FieldValueInvalid", "spec.overhead.limits[cpu]", f'Invalid value: "-100m": {_GE0}')]),
]


@pytest.mark.parametrize("name,extra,causes", POD_CASES, ids=[c[0] for c in POD_CASES])
def test_pod_runtime_class_fields(name, extra, causes):
    errs = Errors()
    validate_pod_spec({"containers": [{"name": "c", "image": "i"}], **extra}, "spec", errs)
    assert [(c["reason"], c["field"], c["message"]) for c in errs.causes] == causes


EXISTS_ALL = {"operator": "Exists"}
K_EXISTS = {"key": "k", "operator": "Exists"}
K_EQ_V = {"key": "k", "operator": "Equal", "value": "v"}
K_EQ_V_NS = {"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"}
NE_60 = {"key": "n", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60}
NE_30 = {"key": "n", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30}
NE_FOREVER = {"key": "n", "operator": "Exists", "effect": "NoExecute"}

SUPERSET_CASES = [
    ("equal", K_EQ_V, K_EQ_V, True),
    ("empty key Exists covers everything", EXISTS_ALL, K_EQ_V_NS, True),
    ("Exists covers a value", K_EXISTS, K_EQ_V, True),
    ("a value does not cover Exists", K_EQ_V, K_EXISTS, False),
    ("no effect covers an effect", K_EQ_V, K_EQ_V_NS, True),
    ("an effect does not cover none", K_EQ_V_NS, K_EQ_V, False),
    ("other key", K_EXISTS, {"key": "j", "operator": "Exists"}, False),
    ("longer seconds cover shorter", NE_60, NE_30, True),
    ("shorter seconds do not cover longer", NE_30, NE_60, False),
    ("bounded does not cover forever", NE_60, NE_FOREVER, False),
    ("forever covers bounded", NE_FOREVER, NE_60, True),
]


@pytest.mark.parametrize("name,ss,t,want", SUPERSET_CASES, ids=[c[0] for c in SUPERSET_CASES])
def test_is_superset(name, ss, t, want):
    assert is_superset(ss, t) is want


MERGE_CASES = [
    ("disjoint", [K_EQ_V], [NE_60], [K_EQ_V, NE_60]),
    ("equal kept once", [K_EQ_V], [dict(K_EQ_V)], [K_EQ_V]),
    ("covered by a later one dropped", [K_EQ_V_NS], [K_EXISTS], [K_EXISTS]),
    ("covered by an earlier one dropped", [K_EXISTS], [K_EQ_V], [K_EXISTS]),
    ("everything covered by Exists-all", [K_EQ_V, NE_30], [EXISTS_ALL], [EXISTS_ALL]),
    ("shorter seconds dropped for longer", [NE_30], [NE_60], [NE_60]),
    ("empty", [], [], []),
]


@pytest.mark.parametrize("name,first,second,want", MERGE_CASES, ids=[c[0] for c in MERGE_CASES])
def test_merge_tolerations(name, first, second, want):
    assert merge_tolerations(first, second) == want
