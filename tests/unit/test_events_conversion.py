"""events.k8s.io/v1 <-> core/v1 Events (one stored resource, ``strategy/event.py``) and the
validation each group's writes get (``validation/event.py``)."""

from __future__ import annotations

import contextvars
import copy

import pytest

from controlplane.apiserver.meta import errors
from controlplane.apiserver.meta.request import GROUP_VERSION
from controlplane.apiserver.strategy.base import FIELD_STRICT, WARNINGS
from controlplane.apiserver.strategy.builtins import builtin_registry
from controlplane.apiserver.strategy.event import core_to_v1, v1_to_core
from controlplane.apiserver.validation.objects import validate

META = {"name": "p.17a8b9c0d1e2f3a4", "namespace": "ns", "uid": "u-1", "resourceVersion": "42",
        "creationTimestamp": "2026-12-08T10:00:00Z"}
REF = {"kind": "Pod", "namespace": "ns", "name": "p", "uid": "pod-uid", "apiVersion": "v1",
       "resourceVersion": "7", "fieldPath": "spec.containers{app}"}
RELATED = {"kind": "Node", "name": "n1", "apiVersion": "v1"}
SERIES = {"count": 3, "lastObservedTime": "2026-12-08T10:00:05.000000Z"}

# (field in events.k8s.io/v1, field in core/v1, a value): every field of the two versions
FIELDS = [
    ("regarding", "involvedObject", REF),
    ("note", "message", "Started container app"),
    ("deprecatedSource", "source", {"component": "kubelet", "host": "n1"}),
    ("deprecatedFirstTimestamp", "firstTimestamp", "2026-12-08T10:00:00Z"),
    ("deprecatedLastTimestamp", "lastTimestamp", "2026-12-08T10:00:05Z"),
    ("deprecatedCount", "count", 4),
    ("reportingController", "reportingComponent", "kubelet"),
    ("reportingInstance", "reportingInstance", "n1"),
    ("eventTime", "eventTime", "2026-12-08T10:00:00.123456Z"),
    ("series", "series", SERIES),
    ("related", "related", RELATED),
    ("action", "action", "Starting"),
    ("reason", "reason", "Started"),
    ("type", "type", "Normal"),
    ("metadata", "metadata", META),
]


@pytest.mark.parametrize("v1_field, core_field, value", FIELDS, ids=[f[0] for f in FIELDS])
def test_each_field_converts_both_ways(v1_field: str, core_field: str, value) -> None:
    v1 = {"apiVersion": "events.k8s.io/v1", "kind": "Event", v1_field: copy.deepcopy(value)}
    core = v1_to_core(v1)
    assert core["apiVersion"] == "v1" and core["kind"] == "Event"
    assert core[core_field] == value and (v1_field == core_field or v1_field not in core)
    back = core_to_v1(core)
    assert back["apiVersion"] == "events.k8s.io/v1" and back[v1_field] == value
    assert core_field == v1_field or core_field not in back


def test_a_full_event_round_trips_both_ways() -> None:
    v1 = {"apiVersion": "events.k8s.io/v1", "kind": "Event", **{f[0]: copy.deepcopy(f[2]) for f in FIELDS}}
    core = {"apiVersion": "v1", "kind": "Event", **{f[1]: copy.deepcopy(f[2]) for f in FIELDS}}
    assert v1_to_core(v1) == core
    assert core_to_v1(core) == v1
    assert v1_to_core(core_to_v1(core)) == core
    assert core_to_v1(v1_to_core(v1)) == v1


def test_v1_view_prints_unset_times_as_null_and_they_stay_unset() -> None:
    """Go prints ``eventTime`` and the deprecated timestamps even when unset (null); a null
    sent back is an unset field, not a stored null."""
    core = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"}, "message": "m"}
    v1 = core_to_v1(core)
    assert v1["eventTime"] is None and v1["deprecatedFirstTimestamp"] is None and v1["deprecatedLastTimestamp"] is None
    assert v1_to_core(v1) == core


def test_core_only_field_names_sent_to_v1_are_unknown() -> None:
    box: list[str] = []
    ctx = contextvars.copy_context()

    def run():
        WARNINGS.set(box)
        return v1_to_core({"apiVersion": "events.k8s.io/v1", "kind": "Event", "note": "n", "message": "m"})

    core = ctx.run(run)
    assert core["message"] == "n" and box == ['unknown field "message"']


def test_core_only_field_names_sent_to_v1_are_refused_under_strict() -> None:
    def run():
        FIELD_STRICT.set(True)
        return v1_to_core({"apiVersion": "events.k8s.io/v1", "kind": "Event", "note": "n", "message": "m",
                           "involvedObject": {}})

    with pytest.raises(errors.ApiError) as e:
        contextvars.copy_context().run(run)
    assert e.value.code == 400
    assert e.value.message == ('Event in version "v1" cannot be handled as a Event: strict decoding error: '
                               'unknown field "message", unknown field "involvedObject"')


def test_registry_serves_one_storage() -> None:
    reg = builtin_registry()
    core, v1 = reg.get("", "v1", "events"), reg.get("events.k8s.io", "v1", "events")
    assert core is not None and v1 is not None
    assert v1.converted and not core.converted
    assert reg.storage_info(v1) is core and v1.key_group == core.key_group == "core"


# --- validation ---------------------------------------------------------------------------------

def _core(**fields) -> dict:
    ev = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "p.1", "namespace": "ns"},
          "involvedObject": {"kind": "Pod", "name": "p", "namespace": "ns"}, "reason": "Started", "type": "Normal"}
    for k, v in fields.items():
        if v is None:
            ev.pop(k, None)
        else:
            ev[k] = v
    return ev


NEW = {"eventTime": "2026-12-08T10:00:00.000000Z", "reportingComponent": "example.com/ctl",
       "reportingInstance": "ctl-1", "action": "Start"}
CORE, V1 = ("", "v1"), ("events.k8s.io", "v1")


@pytest.mark.parametrize("case, gv, obj, expected", [
    ("core: old style", CORE, _core(), []),
    ("core: no eventTime, no action", CORE, _core(source={"component": "x"}), []),
    ("core: namespace mismatch", CORE, _core(involvedObject={"kind": "Pod", "name": "p", "namespace": "other"}),
     ['involvedObject.namespace: Invalid value: "other": does not match event.namespace']),
    ("core: node event outside default", CORE, _core(involvedObject={"kind": "Node", "name": "n"}),
     ['involvedObject.namespace: Invalid value: "": does not match event.namespace']),
    ("core: new style needs reporting fields", CORE, _core(eventTime=NEW["eventTime"]),
     ["reportingComponent: Required value", 'reportingComponent: Invalid value: "": name part must be non-empty',
      "reportingInstance: Required value", "action: Required value"]),
    ("core: new style complete", CORE, _core(**NEW), []),
    ("core: count and timestamps stay allowed", CORE, _core(**NEW, count=3, firstTimestamp="2026-12-08T10:00:00Z"),
     []),
    ("v1: complete", V1, _core(**NEW), []),
    ("v1: eventTime and reporting fields required", V1, _core(),
     ["eventTime: Required value"]),
    ("v1: new style without reporting", V1, _core(eventTime=NEW["eventTime"]),
     ["reportingController: Required value", 'reportingController: Invalid value: "": name part must be non-empty',
      "reportingInstance: Required value", "action: Required value"]),
    ("v1: note too long", V1, _core(**NEW, message="x" * 1025),
     ['message: Invalid value: "": can have at most 1024 characters']),
    ("v1: bad type", V1, _core(**NEW, type="Info"), ['type: Invalid value: "": has invalid value: Info']),
    ("v1: deprecated fields set", V1, _core(**NEW, count=2, source={"component": "c"}),
     ['count: Invalid value: "": needs to be unset', 'source: Invalid value: "": needs to be unset']),
    ("v1: series too short", V1, _core(**NEW, series={"count": 1}),
     ['series.count: Invalid value: "": should be at least 2', "series.lastObservedTime: Required value"]),
    ("v1: name not a subdomain", V1, _core(**NEW, metadata={"name": "P_1", "namespace": "ns"}),
     ['metadata.name: Invalid value: "P_1": a lowercase RFC 1123 subdomain']),
    ("v1: controller not a qualified name", V1, _core(**{**NEW, "reportingComponent": "a b"}),
     ['reportingController: Invalid value: "a b": name part must consist of']),
])
def test_event_create_validation(case, gv, obj, expected) -> None:
    def run() -> list[str]:
        GROUP_VERSION.set(gv)
        try:
            validate(obj, ("", "v1", "Event"), strict=False)
        except errors.ApiError as e:
            assert e.code == 422 and e.message.startswith(f'Event "{obj["metadata"]["name"]}" is invalid: '), e.message
            return [f'{c["field"]}: {c["message"]}' for c in e.details["causes"]]
        return []

    got = contextvars.copy_context().run(run)
    assert len(got) == len(expected), (case, got)
    for g, want in zip(got, expected):
        assert g.startswith(want), (case, got)


@pytest.mark.parametrize("case, gv, change, expected", [
    ("core: anything may change", CORE, {"message": "other", "reason": "Other"}, []),
    ("v1: series may grow", V1, {"series": {"count": 2, "lastObservedTime": "2026-12-08T10:00:09.000000Z"}}, []),
    ("v1: bad series", V1, {"series": {"count": 1, "lastObservedTime": "2026-12-08T10:00:09.000000Z"}},
     ["series.count"]),
    ("v1: note immutable", V1, {"message": "other"}, ["message"]),
    ("v1: controller immutable", V1, {"reportingComponent": "example.com/other"}, ["reportingController"]),
    ("v1: regarding immutable", V1, {"involvedObject": {"kind": "Pod", "name": "q", "namespace": "ns"}},
     ["involvedObject"]),
])
def test_event_update_validation(case, gv, change, expected) -> None:
    old = _core(**NEW)
    new = {**copy.deepcopy(old), **change}

    def run() -> list[str]:
        GROUP_VERSION.set(gv)
        try:
            validate(new, ("", "v1", "Event"), strict=False, is_update=True, old=old)
        except errors.ApiError as e:
            return [c["field"] for c in e.details["causes"]]
        return []

    assert contextvars.copy_context().run(run) == expected, case
