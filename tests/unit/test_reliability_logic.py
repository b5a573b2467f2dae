"""Pure pieces of issue 15's reliability work, table-driven: the restart backoff, Kubernetes'
health-check answers, the pod GC plan, pidfile reclaiming and exit descriptions."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from controlplane.supervisor.process import describe_exit
from controlplane.controllers.podgc import plan
from controlplane.machinery.backoff import RestartBackoff
from controlplane.machinery.healthz import HealthChecks
from controlplane.procutil import PidFiles, start_time


@pytest.mark.parametrize("runs,expect", [
    ([1, 1, 1, 1, 1, 1, 1], [0, 1, 2, 4, 8, 16, 30]),
    ([1, 1, 120, 1], [0, 1, 0, 1]),  # a run past reset_after starts over
    ([0, 0, 0, 0, 0, 0, 0, 0, 0], [0, 1, 2, 4, 8, 16, 30, 30, 30]),
], ids=["doubling-to-cap", "reset-after-stable-run", "capped"])
def test_restart_backoff(runs, expect):
    b = RestartBackoff(initial=1, cap=30, reset_after=60)
    assert [b.next_delay(r) for r in runs] == expect


def _checks(fail: set[str]) -> HealthChecks:
    h = HealthChecks()
    h.add("ping", lambda: None)
    h.add("etcd", lambda: "etcd unreachable" if "etcd" in fail else None)
    h.add("informer-sync", lambda: "pods" if "informer-sync" in fail else None, ("readyz",))
    return h


@pytest.mark.parametrize("fail,sub,query,code,body", [
    (set(), "", {}, 200, "ok"),
    (set(), "", {"verbose": [""]}, 200, "[+]ping ok\n[+]etcd ok\n[+]informer-sync ok\nreadyz check passed\n"),
    ({"etcd"}, "", {}, 500, "[+]ping ok\n[-]etcd failed: reason withheld\n[+]informer-sync ok\nreadyz check failed\n"),
    ({"etcd"}, "", {"exclude": ["etcd"]}, 200, "ok"),
    ({"etcd"}, "", {"exclude": ["etcd", "nope"], "verbose": [""]}, 200,
     "[+]ping ok\n[+]etcd excluded: ok\n[+]informer-sync ok\n"
     "warn: some health checks cannot be excluded: no matches for \"nope\"\nreadyz check passed\n"),
    ({"etcd"}, "etcd", {}, 500, "internal server error: etcd unreachable\n"),
    (set(), "etcd", {}, 200, "ok"),
    (set(), "bogus", {}, 404, "404 page not found\n"),
], ids=["ok", "verbose", "failing", "excluded", "exclude-unknown", "one-failing", "one-ok", "unknown-check"])
def test_readyz_answers_as_kubernetes(fail, sub, query, code, body):
    assert _checks(fail).answer("readyz", sub, query) == (code, body)


def test_livez_has_only_its_checks_and_a_raising_check_fails():
    h = _checks(set())
    h.add("boom", lambda: 1 / 0, ("livez",))
    code, body = h.answer("livez", "", {"verbose": [""]})
    assert code == 500 and "[-]boom failed: reason withheld" in body and "informer-sync" not in body
    with pytest.raises(ValueError):
        h.add("ping", lambda: None)


def _pod(name, node=None, phase="Running", deleting=False, created="2024-01-01T00:00:00Z"):
    md = {"name": name, "namespace": "d", "uid": name, "creationTimestamp": created}
    if deleting:
        md["deletionTimestamp"] = "2024-01-02T00:00:00Z"
    return {"metadata": md, "spec": {"nodeName": node} if node else {}, "status": {"phase": phase}}


def test_podgc_quarantines_then_collects_orphans():
    pods = [_pod("a", "gone", deleting=True), _pod("b", "here"), _pod("c", "gone")]
    missing: dict[str, float] = {}
    p = plan(pods, {"here"}, missing, now=100.0, quarantine=40, threshold=0)
    assert not p.orphaned and p.suspect_nodes == {"gone"} and missing == {"gone": 100.0}
    p = plan(pods, {"here"}, missing, now=141.0, quarantine=40, threshold=0)
    assert [x["metadata"]["name"] for x in p.orphaned] == ["a", "c"]
    p = plan(pods, {"here", "gone"}, missing, now=150.0, quarantine=40, threshold=0)  # the node came back
    assert not p.orphaned and missing == {}


@pytest.mark.parametrize("n,threshold,expect", [
    (5, 3, ["t0", "t1"]), (3, 3, []), (5, 0, []),
], ids=["over", "at", "disabled"])
def test_podgc_terminated_threshold_deletes_the_oldest(n, threshold, expect):
    pods = [_pod(f"t{i}", "here", phase="Succeeded" if i % 2 else "Failed", created=f"2024-01-01T00:00:0{i}Z")
            for i in range(n)] + [_pod("running", "here")]
    p = plan(pods, {"here"}, {}, now=0, quarantine=40, threshold=threshold)
    assert [x["metadata"]["name"] for x in p.over_threshold] == expect


def test_podgc_unscheduled_terminating():
    p = plan([_pod("u", deleting=True), _pod("v")], set(), {}, now=0, quarantine=40, threshold=0)
    assert [x["metadata"]["name"] for x in p.unscheduled_terminating] == ["u"]


@pytest.mark.parametrize("rc,text", [(0, "exit status 0"), (1, "exit status 1"), (-9, "signal SIGKILL"),
                                     (-15, "signal SIGTERM"), (None, "unknown")])
def test_describe_exit(rc, text):
    assert describe_exit(rc) == text


def test_pidfiles_reclaim_only_live_identical_processes(tmp_path):
    pf = PidFiles(tmp_path / "run")
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        pf.record("sleeper", child.pid)
        (tmp_path / "run" / "stale.pid").write_text(f"{child.pid} 1\n")  # same pid, another start time
        assert pf.live() == {"sleeper": child.pid}
        assert pf.reclaim(grace=5) == {"sleeper": child.pid}
        assert child.wait(5) == -signal.SIGTERM
        assert list((tmp_path / "run").glob("*.pid")) == []
        assert start_time(child.pid) is None
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
