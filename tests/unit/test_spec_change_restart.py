"""A container whose image the pod's spec changed (``ContainerRunner.spec_changed``, the
kubelet's ``containerChanged``): which containers are killed to be started again, the Event,
the back-off reset, and the restart that follows whatever the restart policy
(``_after_exit``)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from controlplane.agent import lifecycle as lc
from controlplane.agent.containers import ContainerRunner


class Runner(ContainerRunner):
    def __init__(self, spec: dict, init: list[lc.CState], main: list[lc.CState], deleting: bool = False):
        self.events: list[tuple[str, str, str]] = []
        self.spawned: list = []
        cfg = SimpleNamespace(backoff_initial=10.0, backoff_cap=300.0)
        self.agent = SimpleNamespace(cfg=cfg, event=lambda pod, t, r, m: self.events.append((t, r, m)),
                                     spawn=self._spawn)
        md = {"name": "p", "namespace": "ns", "uid": "u"}
        if deleting:
            md["deletionTimestamp"] = "2026-12-07T00:00:00Z"
        self.pod = {"metadata": md, "spec": spec}
        self.uid, self.ns, self.name = "u", "ns", "p"
        self.init, self.main, self.ephemeral = init, main, []
        self.backoff = {c.name: lc.CrashBackoff(10.0, 300.0) for c in init + main}
        self.killing: set[str] = set()
        self.terminating = False
        self.timer = None
        self.wake = asyncio.Event()

    def _spawn(self, coro):
        coro.close()  # (the stop itself is runtime work: integration-tested)
        self.spawned.append(coro)


def spec(policy="Always", app_image="busybox:2", sidecar_image="busybox:1", init_image="busybox:2"):
    return {"restartPolicy": policy,
            "initContainers": [{"name": "init", "image": init_image},
                               {"name": "side", "image": sidecar_image, "restartPolicy": "Always"}],
            "containers": [{"name": "app", "image": app_image}]}


def cs(name, state="running", image="busybox:1", init=False, restartable=False, cid="cid", **kw):
    return lc.CState(name, image, init=init, restartable=restartable, state=state,
                     cid=cid if state != "waiting" else None, **kw)


def runner(**kw):
    deleting = kw.pop("deleting", False)
    policy = kw.pop("policy", "Always")
    init = [cs("init", "terminated", init=True, done=True, cid="i-0"),
            cs("side", kw.pop("side_state", "running"), init=True, restartable=True, cid="s-0")]
    main = [cs("app", kw.pop("app_state", "running"), cid="a-0", **kw)]
    return Runner(spec(policy=policy, sidecar_image=kw.get("sidecar_image", "busybox:1")), init, main, deleting)


@pytest.mark.parametrize("r,killed,events", [
    (runner(), ["a-0"], ["Container app definition changed, will be restarted"]),
    (runner(policy="Never"), ["a-0"], ["Container app definition changed, will be restarted"]),
    (runner(deleting=True), [], []),                     # a pod being deleted restarts nothing
    (runner(app_state="terminated", done=True), [], []),  # finished under Never/OnFailure: left alone
], ids=["running", "running-never", "deleting", "done"])
def test_changed_running_containers_are_killed(r, killed, events):
    r.spec_changed()
    assert sorted(r.killing) == killed
    assert [m for _, _, m in r.events] == events
    assert all(c.changed == (c.cid in killed) for c in r.main)
    assert r.init[0].changed is False, "a finished regular init container is never restarted"


def test_a_changed_sidecar_is_killed_too():
    r = runner()
    r.pod["spec"]["initContainers"][1]["image"] = "busybox:3"
    r.main[0].image = "busybox:2"  # the app is unchanged
    r.spec_changed()
    assert r.killing == {"s-0"} and r.events == [("Normal", "Killing",
                                                   "Init container side definition changed, will be restarted")]


def test_killed_once():
    r = runner()
    r.spec_changed()
    r.spec_changed()
    assert len(r.events) == 1 and len(r.spawned) == 1


def test_waiting_out_a_backoff_starts_at_once_with_a_fresh_backoff():
    r = runner(app_state="waiting", restart_at=10**12, reason="CrashLoopBackOff")
    r.backoff["app"].restarts = 5
    r.spec_changed()
    app = r.main[0]
    assert app.restart_at is None and app.reason == "ContainerCreating" and r.timer == 0.0
    assert r.backoff["app"].restarts == 0 and not r.killing


@pytest.mark.parametrize("policy,code", [("Never", 0), ("OnFailure", 0), ("Always", 137)])
def test_a_changed_container_restarts_at_once_whatever_the_policy(policy, code):
    r = runner(policy=policy)
    app = r.main[0]
    r.backoff["app"].restarts = 4
    app.changed, app.exit_code = True, code
    r._after_exit(app, ran_for=1.0)
    assert app.state == "waiting" and not app.done and app.restart_at is None and r.timer == 0.0
    assert app.changed is False and r.backoff["app"].restarts == 0
