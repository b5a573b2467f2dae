"""``client.resume.ResumePoint``: where a watch resumes when writes share a resourceVersion, and
which events of the resumed stream repeat ones already delivered (table-driven)."""

from __future__ import annotations

import pytest

from controlplane.client.resume import ResumePoint, event_key

# Each step: ("ev", rv, key) -> expected keep?, or ("bm", rv) for a bookmark, or ("reset", rv);
# after the step the resume point must be `rv_after`.
CASES = {
    "one event per revision (kube-apiserver)": (
        "10", [(("ev", "11", "a"), True, "10"), (("ev", "12", "b"), True, "11"), (("bm", "12"), None, "12")]),
    "a revision is complete once a later one begins": (
        "10", [(("ev", "11", "a"), True, "10"), (("ev", "11", "b"), True, "10"), (("ev", "13", "c"), True, "11")]),
    "a bookmark completes the revision in progress": (
        "10", [(("ev", "11", "a"), True, "10"), (("ev", "11", "b"), True, "10"), (("bm", "11"), None, "11")]),
    "a resumed stream repeats the torn revision: repeats dropped, the rest kept": (
        "10", [(("ev", "11", "a"), True, "10"), (("ev", "11", "b"), True, "10"),
               # stream cut here; resumed from 10, the server sends all of 11 again
               (("ev", "11", "a"), False, "10"), (("ev", "11", "b"), False, "10"), (("ev", "11", "c"), True, "10"),
               (("ev", "12", "a"), True, "11")]),
    "after a relist nothing is taken for a repeat": (
        "10", [(("ev", "11", "a"), True, "10"), (("reset", "20"), None, "20"), (("ev", "11", "a"), True, "20")]),
    "events without a resourceVersion are kept and change nothing": (
        "10", [(("ev", None, "a"), True, "10"), (("ev", "", "a"), True, "10")]),
    "an empty bookmark changes nothing": (
        "10", [(("ev", "11", "a"), True, "10"), (("bm", ""), None, "10"), (("ev", "11", "a"), False, "10")]),
}


@pytest.mark.parametrize("start,steps", CASES.values(), ids=list(CASES))
def test_resume_point(start: str, steps: list) -> None:
    p = ResumePoint(start)
    for step, keep, rv_after in steps:
        if step[0] == "ev":
            assert p.event(step[1], step[2]) is keep, step
        elif step[0] == "bm":
            p.bookmark(step[1])
        else:
            p.reset(step[1])
        assert p.rv == rv_after, step


@pytest.mark.parametrize("obj,key", [
    ({"metadata": {"namespace": "ns", "name": "a"}}, "ns/a"),
    ({"metadata": {"name": "node-1"}}, "node-1"),
    ({}, "None"),
])
def test_event_key(obj: dict, key: str) -> None:
    assert event_key(obj) == key
