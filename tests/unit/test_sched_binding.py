"""The binding cycle's extension points with kube-scheduler's rules, table-driven: PreBind
plugins run in order and the first failure ends the cycle; Bind plugins run until one does
not return Skip (every one skipping is a failure); a failed binding cycle unreserves and
forgets the pod and retries it after backoff (or drops it when the pod is gone). Scripted
plugins stand in for real ones; the DefaultBinder's POST is covered by the live tests."""

from __future__ import annotations

import asyncio

import pytest

import schedulers.plugins  # noqa: F401  the in-tree plugins (PrioritySort, NodeResourcesFit)
from controlplane.client.rest import RestClient
from schedulers.framework.framework import Framework
from schedulers.framework.interface import Code, CycleState, Plugin, Status
from schedulers.framework.podinfo import PodInfo
from schedulers.framework.profile import ProfileConfig, build_profile
from schedulers.framework.registry import register
from schedulers.framework.scheduler import Scheduler

RESULTS = {
    "ok": lambda: None,
    "success": Status.ok,
    "skip": Status.skip,
    "error": lambda: Status.error("boom"),
    "unschedulable": lambda: Status.unschedulable("node went away"),
}


def _result(args: dict) -> Status | None:
    args["calls"].append(args["id"])
    if args["result"] == "raise":
        raise RuntimeError("plugin bug")
    return RESULTS[args["result"]]()


def _scripted(name: str, point: str) -> type[Plugin]:
    async def hook(self, cs, pod, node_name):
        return _result(self.args)

    return register(type(name, (Plugin,), {"name": name, point: hook}))


PRE_BINDERS = [_scripted(f"TestPreBind{i}", "pre_bind") for i in range(3)]
BINDERS = [_scripted(f"TestBind{i}", "bind") for i in range(3)]


@register
class RecordingReserve(Plugin):
    name = "TestReserve"

    def reserve(self, cs, pod, node_name, snap):
        self.args["calls"].append(("reserve", node_name))

    def unreserve(self, cs, pod, node_name, snap):
        self.args["calls"].append(("unreserve", node_name))


def pod_obj(name: str = "p") -> dict:
    return {"metadata": {"name": name, "namespace": "d", "uid": f"uid-{name}"},
            "spec": {"containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": "100m"}}}]}}


def framework(plugins: list[type[Plugin]], results: list[str], calls: list) -> Framework:
    entries = [(cls.name, 1, {"id": i, "result": r, "calls": calls}) for i, (cls, r) in enumerate(zip(plugins, results))]
    return Framework(build_profile(ProfileConfig("t", entries)))


@pytest.mark.parametrize("results,code,called", [
    ([], Code.SUCCESS, []),
    (["ok"], Code.SUCCESS, [0]),
    (["success", "ok", "ok"], Code.SUCCESS, [0, 1, 2]),
    (["ok", "error", "ok"], Code.ERROR, [0, 1]),
    (["unschedulable", "ok"], Code.UNSCHEDULABLE, [0]),
    (["skip", "ok"], Code.SKIP, [0]),  # PreBind has no Skip: anything but success fails
    (["ok", "raise"], Code.ERROR, [0, 1]),
], ids=lambda v: ",".join(v) if isinstance(v, list) and v and isinstance(v[0], str) else None)
async def test_pre_bind_plugins_run_in_order_until_one_fails(results, code, called):
    calls: list = []
    fw = framework(PRE_BINDERS, results, calls)
    st = await fw.run_pre_bind_plugins(CycleState(), PodInfo.from_pod(pod_obj()), "n1")
    assert st.code == code and calls == called
    if code == Code.ERROR:
        bad = called[-1]
        assert st.plugin == f"TestPreBind{bad}"
        assert st.reasons[0].startswith(f"running PreBind plugin 'TestPreBind{bad}': ")


@pytest.mark.parametrize("results,code,called", [
    ([], Code.SKIP, []),  # no Bind plugin: not bound
    (["ok"], Code.SUCCESS, [0]),
    (["skip", "ok", "ok"], Code.SUCCESS, [0, 1]),
    (["skip", "skip", "success"], Code.SUCCESS, [0, 1, 2]),
    (["skip", "skip", "skip"], Code.SKIP, [0, 1, 2]),  # every one skipped: not bound
    (["ok", "error"], Code.SUCCESS, [0]),  # the first that binds ends the chain
    (["skip", "error", "ok"], Code.ERROR, [0, 1]),
    (["unschedulable", "ok"], Code.UNSCHEDULABLE, [0]),
    (["raise", "ok"], Code.ERROR, [0]),
], ids=lambda v: ",".join(v) if isinstance(v, list) and v and isinstance(v[0], str) else None)
async def test_bind_plugins_run_until_one_does_not_skip(results, code, called):
    calls: list = []
    fw = framework(BINDERS, results, calls)
    st = await fw.run_bind_plugins(CycleState(), PodInfo.from_pod(pod_obj()), "n1")
    assert st.code == code and calls == called
    if code == Code.UNSCHEDULABLE:
        assert st.reasons == ["node went away"] and st.plugin == "TestBind0"
    if code == Code.SKIP:
        assert not st.is_success


class Recorder:
    """Stands in for the EventRecorder (which needs a running API) and keeps the Events."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def event(self, obj: dict, etype: str, reason: str, message: str) -> None:
        self.events.append((etype, reason, message))


def make_scheduler(pre_bind: str, bind: str, calls: list) -> Scheduler:
    entries = [("PrioritySort", 1, {}), ("NodeResourcesFit", 1, {}), ("TestReserve", 1, {"calls": calls}),
               ("TestPreBind0", 1, {"id": "pre", "result": pre_bind, "calls": calls}),
               ("TestBind0", 1, {"id": "bind", "result": bind, "calls": calls})]
    sched = Scheduler(RestClient("http://127.0.0.1:9"), {"t": ProfileConfig("t", entries)}, seed=1)
    sched.recorder = Recorder()  # type: ignore[assignment]
    sched.cache.add_or_update_node({"metadata": {"name": "n1"}, "status": {"allocatable": {"cpu": "4", "memory": "8Gi"}}})
    return sched


async def cycle(sched: Scheduler, obj: dict) -> PodInfo:
    """One pod through the scheduling cycle and its binding cycle."""
    sched.queue.add(PodInfo.from_pod({**obj, "spec": {**obj["spec"], "schedulerName": "t"}}))
    p = sched.queue.pop_nowait()
    assert p is not None
    await sched._bind_slots.acquire()
    sched.schedule_one(p)
    await asyncio.gather(*list(sched._binds))
    return p


@pytest.mark.parametrize("pre_bind,bind,pod_exists,bound,where,event", [
    ("ok", "ok", True, True, None, ("Scheduled", "Successfully assigned d/p to n1")),
    ("error", "ok", True, False, "backoff", ("FailedScheduling", "running PreBind plugin 'TestPreBind0': boom")),
    ("unschedulable", "ok", True, False, "backoff", ("FailedScheduling", "node went away")),
    ("ok", "skip", True, False, "backoff", ("FailedScheduling", "no Bind plugin bound the pod")),
    ("ok", "error", True, False, "backoff", ("FailedScheduling", "running Bind plugin 'TestBind0': boom")),
    ("ok", "error", False, False, None, None),  # the pod was deleted meanwhile: dropped, no Event
])
async def test_binding_cycle_failure_unreserves_and_retries(pre_bind, bind, pod_exists, bound, where, event):
    calls: list = []
    sched = make_scheduler(pre_bind, bind, calls)
    obj = pod_obj()
    if pod_exists:
        sched.pods._upsert(obj)  # what the pod informer holds
    p = await cycle(sched, obj)
    assert calls[:1] == [("reserve", "n1")] and "pre" in calls
    assert ("bind" in calls) == (pre_bind == "ok")
    assert (("unreserve", "n1") in calls) == (not bound)
    assert (p.uid in sched.cache.pod_node) == bound  # assumed, or forgotten
    assert sched.cache.requested["cpu"][0] == (100 if bound else 0)
    assert sched.queue.where(p.key) == where
    assert [(reason, msg) for _, reason, msg in sched.recorder.events] == ([event] if event else [])
    assert sched._bind_slots._value == 256  # the slot was given back


def test_a_profile_without_a_bind_plugin_is_refused():
    cfg = ProfileConfig("t", [("PrioritySort", 1, {}), ("NodeResourcesFit", 1, {})])
    with pytest.raises(ValueError, match="no Bind plugin"):
        Scheduler(RestClient("http://127.0.0.1:9"), {"t": cfg})


def test_profiles_must_share_the_queue_sort_plugin():
    a = ProfileConfig("a", [("PrioritySort", 1, {}), ("TestBind0", 1, {})])
    b = ProfileConfig("b", [("TestBind0", 1, {})])
    with pytest.raises(ValueError, match="same QueueSort plugin"):
        Scheduler(RestClient("http://127.0.0.1:9"), {"a": a, "b": b})
