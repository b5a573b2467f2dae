"""The ttl-after-finished controller's pure half: which Jobs are due and when."""

from __future__ import annotations

import pytest

from controlplane.controllers import ttlafterfinished as ttl
from controlplane.machinery.timestamps import parse_time_or_none

T = "2026-12-07T10:00:00Z"
T_S = parse_time_or_none(T)
assert T_S is not None


def job(ttl_s=None, conds=(), deleting=False):
    j = {"metadata": {"name": "j", "namespace": "ns", "uid": "u"}, "spec": {},
         "status": {"conditions": [{"type": t, "status": s, "lastTransitionTime": at} for t, s, at in conds]}}
    if ttl_s is not None:
        j["spec"]["ttlSecondsAfterFinished"] = ttl_s
    if deleting:
        j["metadata"]["deletionTimestamp"] = T
    return j


@pytest.mark.parametrize("j,now,expected", [
    (job(None, [("Complete", "True", T)]), T_S + 100, None),
    (job(10, []), T_S, None),
    (job(10, [("Complete", "False", T)]), T_S, None),
    (job(10, [("SuccessCriteriaMet", "True", T)]), T_S, None),
    (job(10, [("Complete", "True", T)]), T_S + 4, 6.0),
    (job(10, [("Failed", "True", T)]), T_S + 10, 0.0),
    (job(0, [("Complete", "True", T)]), T_S + 1, -1.0),
    (job(10, [("Complete", "True", T)], deleting=True), T_S + 100, None),
    (job(10, [("Complete", "True", None)]), T_S, None),
    (job(10, [("Suspended", "False", "2026-12-07T09:00:00Z"), ("Complete", "True", T)]), T_S + 3, 7.0),
    (job(10, [("Complete", "True", T)]), T_S - 5, 15.0),
], ids=["no-ttl", "running", "condition-false", "interim-condition", "not-yet", "failed-due", "ttl-0",
        "being-deleted", "no-finish-time", "finish-condition-picked", "clock-skew"])
def test_time_left(j, now, expected):
    assert ttl.time_left(j, now) == expected


@pytest.mark.parametrize("j,expected", [
    (job(5, [("Complete", "True", T)]), True),
    (job(5, [("Failed", "True", T)]), True),
    (job(None, [("Failed", "True", T)]), False),
    (job(5, [("FailureTarget", "True", T)]), False),
    (job(5, [("Complete", "True", T)], deleting=True), False),
], ids=["complete", "failed", "no-ttl", "interim", "deleting"])
def test_needs_cleanup(j, expected):
    assert ttl.needs_cleanup(j) is expected
