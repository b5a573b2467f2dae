"""CRD versions and selectable fields, table-driven: the deprecation Warning of a version
(``server/crds.deprecation_warning``), the field values a ``fieldSelector`` matches
(``machinery.fields.custom_fields``), the CRD's ``selectableFields`` validation, and that a
custom resource is written as the version it was sent at (``Registry.storage_info``)."""

from __future__ import annotations

import pytest

from controlplane.apiserver.crd.validation import validate_crd
from controlplane.apiserver.discovery.registry import Registry
from controlplane.apiserver.meta.names import Errors
from controlplane.apiserver.server.crds import deprecation_warning, infos_for, selectable_paths
from controlplane.machinery.fields import custom_fields
from controlplane.machinery.selectors import parse_field_selector


def _spec(*versions: dict) -> dict:
    return {"group": "example.com", "names": {"plural": "widgets", "kind": "Widget"}, "scope": "Namespaced",
            "versions": list(versions)}


def _v(name: str, served: bool = True, deprecated: bool = False, **kw) -> dict:
    return {"name": name, "served": served, "storage": False, "deprecated": deprecated, **kw}


@pytest.mark.parametrize("version, others, want", [
    (_v("v1alpha1", deprecated=True), [], "example.com/v1alpha1 Widget is deprecated"),
    (_v("v1alpha1", deprecated=True), [_v("v1beta1"), _v("v1"), _v("v2", served=False)],
     "example.com/v1alpha1 Widget is deprecated; use example.com/v1 Widget"),
    (_v("v1beta1", deprecated=True), [_v("v1alpha1"), _v("v1beta2", deprecated=True)],
     "example.com/v1beta1 Widget is deprecated"),  # only older or deprecated ones
    (_v("v1beta1", deprecated=True), [_v("v1beta2"), _v("v1alpha3")],
     "example.com/v1beta1 Widget is deprecated; use example.com/v1beta2 Widget"),
    (_v("v1", deprecated=True, deprecationWarning="use v2, please"), [_v("v2")], "use v2, please"),
])
def test_deprecation_warning(version: dict, others: list[dict], want: str) -> None:
    assert deprecation_warning(version, _spec(version, *others)) == want


def test_infos_carry_warning_selectable_fields_and_terminating() -> None:
    crd = {"metadata": {"name": "widgets.example.com", "deletionTimestamp": "2026-12-07T00:00:00Z"},
           "spec": _spec(_v("v1alpha1", deprecated=True, selectableFields=[{"jsonPath": ".spec.size"}]),
                         {**_v("v1", selectableFields=[{"jsonPath": ".spec.color"}]), "storage": True})}
    old, new = infos_for(crd)
    assert (old.warning, old.selectable_fields, old.terminating) == (
        "example.com/v1alpha1 Widget is deprecated; use example.com/v1 Widget", ("spec.size",), True)
    assert (new.warning, new.selectable_fields) == ("", ("spec.color",))
    assert selectable_paths(crd) == ("spec.color", "spec.size")
    registry = Registry()
    for info in (old, new):
        registry.add(info)
    assert registry.storage_info(old) is old  # validated against v1alpha1's schema, stored as v1


OBJ = {"metadata": {"name": "w", "namespace": "ns"},
       "spec": {"color": "red", "replicas": 3, "paused": False, "nothing": None}}


@pytest.mark.parametrize("selector, want", [
    ("spec.color=red", True),
    ("spec.color!=red", False),
    ("spec.replicas=3", True),
    ("spec.paused=false", True),
    ("spec.missing=", True),  # a missing field is ""
    ("spec.nothing=", True),
    ("spec.missing!=x,metadata.name=w,metadata.namespace=ns", True),
    ("metadata.name=v", False),
])
def test_custom_fields_match(selector: str, want: bool) -> None:
    fields = custom_fields(("spec.color", "spec.replicas", "spec.paused", "spec.missing", "spec.nothing"), OBJ)
    assert parse_field_selector(selector).matches(fields) is want


SCHEMA = {"type": "object", "properties": {
    "metadata": {"type": "object", "properties": {"name": {"type": "string"}}},
    "spec": {"type": "object", "properties": {
        "color": {"type": "string", "enum": ["red"]}, "replicas": {"type": "integer"}, "on": {"type": "boolean"},
        "ratio": {"type": "number"}, "tags": {"type": "array", "items": {"type": "string"}}}}}}
P = "spec.versions[0].selectableFields"


@pytest.mark.parametrize("fields, want", [
    ([{"jsonPath": ".spec.color"}, {"jsonPath": ".spec.replicas"}, {"jsonPath": ".spec.on"}], []),
    ([{"jsonPath": ".spec.missing"}],
     [(f"{P}[0].jsonPath", 'Invalid value: ".spec.missing": is an invalid path: does not refer to a valid field')]),
    ([{"jsonPath": ".spec.tags[0]"}],
     [(f"{P}[0].jsonPath", 'Invalid value: ".spec.tags[0]": is an invalid path: array notation is not allowed')]),
    ([{"jsonPath": ".spec.ratio"}],
     [(f"{P}[0].jsonPath", 'Invalid value: ".spec.ratio": must point to a field of type string, boolean or '
                           "integer. Enum string fields and strings with formats are allowed.")]),
    ([{"jsonPath": ".metadata.name"}],
     [(f"{P}[0].jsonPath", 'Invalid value: ".metadata.name": must not point to fields in metadata')]),
    ([{"jsonPath": ".spec.color"}, {"jsonPath": ".spec.color"}],
     [(f"{P}[1].jsonPath", 'Duplicate value: ".spec.color"')]),
    ([{}], [(f"{P}[0].jsonPath", "Required value")]),
])
def test_selectable_fields_validation(fields: list[dict], want: list[tuple[str, str]]) -> None:
    crd = {"metadata": {"name": "widgets.example.com"},
           "spec": _spec({"name": "v1", "served": True, "storage": True, "selectableFields": fields,
                          "schema": {"openAPIV3Schema": SCHEMA}})}
    errs = Errors()
    validate_crd(crd, errs, False, {})
    assert [(c["field"], c["message"]) for c in errs.causes] == want


def test_at_most_eight_selectable_fields() -> None:
    props = {f"f{i}": {"type": "string"} for i in range(9)}
    crd = {"metadata": {"name": "widgets.example.com"},
           "spec": _spec({"name": "v1", "served": True, "storage": True,
                          "selectableFields": [{"jsonPath": f".spec.f{i}"} for i in range(9)],
                          "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                              "spec": {"type": "object", "properties": props}}}}})}
    errs = Errors()
    validate_crd(crd, errs, False, {})
    assert [(c["field"], c["message"]) for c in errs.causes] == [(P, "Too many: 9: must have at most 8 items")]
