"""``unschedulable_condition``: the PodScheduled=False condition the scheduler writes after a
failed attempt, and when it writes nothing (same reason and message)."""

import pytest

from schedulers.framework.scheduler import unschedulable_condition

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z


def pod(*conds: dict) -> dict:
    return {"status": {"conditions": list(conds)}}


def sched(status: str, reason: str = "", message: str = "", since: str = "2023-01-01T00:00:00Z") -> dict:
    return {"type": "PodScheduled", "status": status, "reason": reason, "message": message,
            "lastProbeTime": None, "lastTransitionTime": since}


@pytest.mark.parametrize("p,reason,message,want", [
    # no condition yet: written, transition now
    (pod(), "Unschedulable", "0/2 nodes", sched("False", "Unschedulable", "0/2 nodes", "2023-11-14T22:13:20Z")),
    ({}, "Unschedulable", "m", sched("False", "Unschedulable", "m", "2023-11-14T22:13:20Z")),
    # the same outcome again: nothing to write
    (pod(sched("False", "Unschedulable", "0/2 nodes")), "Unschedulable", "0/2 nodes", None),
    # another message: written, the transition time kept (still False)
    (pod(sched("False", "Unschedulable", "0/2 nodes")), "Unschedulable", "0/3 nodes",
     sched("False", "Unschedulable", "0/3 nodes", "2023-01-01T00:00:00Z")),
    # another reason (a binding error)
    (pod(sched("False", "Unschedulable", "m")), "SchedulerError", "m", sched("False", "SchedulerError", "m")),
    # from True (or a gate lifted): a transition now
    (pod(sched("True")), "Unschedulable", "m", sched("False", "Unschedulable", "m", "2023-11-14T22:13:20Z")),
    # other conditions do not matter
    (pod({"type": "Ready", "status": "False"}, sched("False", "Unschedulable", "m")), "Unschedulable", "m", None),
])
def test_unschedulable_condition(p, reason, message, want):
    assert unschedulable_condition(p, reason, message, NOW) == want
