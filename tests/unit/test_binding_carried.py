"""What a Binding may carry (``endpoints/subresources``), table-driven: the scheduler's
Scheduled Event and SchedulingDecision record are checked before anything is written (400 for
a malformed or misdirected one, 403 when the requester may not create it: a Binding is no way
around RBAC); a good one comes back ready to store, in the pod's namespace."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from controlplane.apiserver.endpoints import subresources as sub
from controlplane.apiserver.meta import errors
from controlplane.apiserver.meta import request as reqctx
from tests.unit.apiserver_kinds import REGISTRY

API = SimpleNamespace(registry=REGISTRY)
T = SimpleNamespace(name="p", namespace="ns")
EVENT = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "p.1"}, "reason": "Scheduled", "type": "Normal",
         "message": "Successfully assigned ns/p to n1", "involvedObject": {"kind": "Pod", "name": "p", "namespace": "ns"}}
RECORD = {"apiVersion": "scheduling.controlplane.io/v1", "kind": "SchedulingDecision", "metadata": {"name": "p.1"},
          "pod": {"name": "p", "namespace": "ns"}, "profile": "default-scheduler", "result": "Scheduled", "node": "n1"}


def _body(key: str, value) -> dict:
    raw = value if isinstance(value, str) else json.dumps(value)
    return {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p", "annotations": {key: raw}},
            "target": {"name": "n1"}}


class _Authz:
    def __init__(self, denied: set[str]) -> None:
        self.denied = denied
        self.asked: list[tuple] = []

    def allowed(self, user, verb, *, group="", resource="", namespace="", **_):
        self.asked.append((verb, group, resource, namespace))
        return resource not in self.denied


def _with(denied: set[str] | None):
    authz = _Authz(denied or set())
    user = SimpleNamespace(name="system:kube-scheduler")
    return authz, (reqctx.CURRENT.set(reqctx.RequestContext(user, None, authz)) if denied is not None else None)


@pytest.mark.parametrize("case, key, value, denied, code", [
    ("event ok", sub.EVENT_ANNOTATION, EVENT, set(), None),
    ("event ok, no security context", sub.EVENT_ANNOTATION, EVENT, None, None),
    ("event not JSON", sub.EVENT_ANNOTATION, "{x", set(), 400),
    ("event not an object", sub.EVENT_ANNOTATION, "[]", set(), 400),
    ("event about another pod", sub.EVENT_ANNOTATION, {**EVENT, "involvedObject": {"kind": "Pod", "name": "q"}},
     set(), 400),
    ("event about a node", sub.EVENT_ANNOTATION, {**EVENT, "involvedObject": {"kind": "Node", "name": "p"}}, set(), 400),
    ("event in another namespace", sub.EVENT_ANNOTATION, {**EVENT, "metadata": {"name": "p.1", "namespace": "x"}},
     set(), 400),
    ("event, wrong kind", sub.EVENT_ANNOTATION, {**EVENT, "kind": "Pod"}, set(), 400),
    ("event, may not create events", sub.EVENT_ANNOTATION, EVENT, {"events"}, 403),
    ("record ok", sub.DECISION_ANNOTATION, RECORD, set(), None),
    ("record about another pod", sub.DECISION_ANNOTATION, {**RECORD, "pod": {"name": "q"}}, set(), 400),
    ("record, may not create records", sub.DECISION_ANNOTATION, RECORD, {"schedulingdecisions"}, 403),
    ("record invalid", sub.DECISION_ANNOTATION, {**RECORD, "result": "Maybe"}, set(), 422),
])
def test_carried_objects_are_checked_before_the_binding(case, key, value, denied, code):
    authz, token = _with(denied)
    check = sub._scheduled_event if key == sub.EVENT_ANNOTATION else sub._decision_record
    try:
        if code is not None:
            with pytest.raises(errors.ApiError) as e:
                check(API, _body(key, value), T)
            assert e.value.code == code, (case, e.value.message)
            return
        info, obj = check(API, _body(key, value), T)
        assert obj["metadata"]["namespace"] == "ns" and info.plural in ("events", "schedulingdecisions"), case
        if denied is not None:
            assert authz.asked == [("create", "" if info.plural == "events" else info.group, info.plural, "ns")]
    finally:
        if token is not None:
            reqctx.CURRENT.reset(token)


def test_no_annotation_carries_nothing():
    body = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"}, "target": {"name": "n1"}}
    assert sub._scheduled_event(API, body, T) is None and sub._decision_record(API, body, T) is None
