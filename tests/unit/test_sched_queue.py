"""The three-part scheduling queue with a fake clock: priority/arrival order, backoff
growth and cap, unschedulable pods moved back by the events their plugins declared, the
5-minute flush, and the move-request race (an event during the cycle sends the pod to backoff)."""

from __future__ import annotations

import pytest

from schedulers.framework.podinfo import PodInfo
from schedulers.framework.queue import SchedulingQueue
from schedulers.plugins.priority_sort import PrioritySort


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def pi(name: str, priority: int = 0) -> PodInfo:
    return PodInfo.from_pod({"metadata": {"name": name, "namespace": "d", "uid": name},
                             "spec": {"priority": priority, "containers": [{"name": "c", "image": "i"}]}})


def make(events=None):
    clock = Clock()
    return SchedulingQueue(PrioritySort.queue_sort_key, clock=clock,
                           plugin_events=events or {"NodeResourcesFit": ("Node/Add", "Pod/Delete"),
                                                    "NodeAffinity": ("Node/Update",)}), clock


def test_priority_then_arrival_order():
    q, clock = make()
    for name, prio in [("a", 0), ("b", 10), ("c", 0), ("d", 10)]:
        q.add(pi(name, prio))
        clock.t += 1
    assert [q.pop_nowait().name for _ in range(4)] == ["b", "d", "a", "c"]
    assert q.pop_nowait() is None


@pytest.mark.parametrize("attempts,wait", [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 10.0), (9, 10.0)])
def test_backoff_doubles_up_to_ten_seconds(attempts, wait):
    q, clock = make()
    q.add(pi("a"))
    for _ in range(attempts):
        p = q.pop_nowait()
        assert p is not None
        q.requeue_error(p)
        if _ < attempts - 1:
            clock.t += 11
    assert q.where("d/a") == "backoff"
    clock.t += wait - 0.01
    assert q.pop_nowait() is None
    clock.t += 0.02
    assert q.pop_nowait().name == "a"


def test_unschedulable_moves_only_on_declared_events():
    q, clock = make()
    q.add(pi("a"))
    p = q.pop_nowait()
    q.requeue_unschedulable(p, {"NodeResourcesFit"})
    assert q.where("d/a") == "unschedulable"
    assert q.on_event("Node/Update") == 0
    assert q.where("d/a") == "unschedulable"
    clock.t += 20  # past its backoff
    assert q.on_event("Pod/Delete") == 1
    assert q.where("d/a") == "active"


def test_unschedulable_moves_to_backoff_when_still_backing_off():
    q, clock = make()
    q.add(pi("a"))
    q.requeue_unschedulable(q.pop_nowait(), {"NodeResourcesFit"})
    assert q.on_event("Node/Add") == 1
    assert q.where("d/a") == "backoff"


def test_unschedulable_flushed_after_five_minutes():
    q, clock = make()
    q.add(pi("a"))
    q.requeue_unschedulable(q.pop_nowait(), {"NodeAffinity"})
    clock.t += 299
    assert q.pop_nowait() is None
    clock.t += 2
    assert q.pop_nowait().name == "a"


def test_event_during_cycle_sends_pod_to_backoff():
    q, clock = make()
    q.add(pi("a"))
    p = q.pop_nowait()
    q.on_event("Node/Add")  # arrives while the pod is being scheduled
    q.requeue_unschedulable(p, {"NodeResourcesFit"})
    assert q.where("d/a") == "backoff"


def test_delete_and_done_remove_the_pod():
    q, _ = make()
    q.add(pi("a"))
    q.add(pi("b"))
    q.delete("d/a")
    p = q.pop_nowait()
    assert p.name == "b"
    q.done(p.key)
    assert len(q) == 0 and q.pop_nowait() is None
