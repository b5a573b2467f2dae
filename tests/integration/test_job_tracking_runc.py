"""Job pod-tracking finalizers with real runc pods (apiserver, controller-manager, scheduler and
a node agent): a Job's containers run to completion, its pods lose
``batch.kubernetes.io/job-tracking`` once counted, and ``kubectl delete pod`` of a succeeded
pod removes it at once without changing ``succeeded``; a running pod deleted with kubectl is
stopped by the agent, counted as failed once and replaced; deleting the Job leaves no pod
behind."""

from __future__ import annotations

import functools
import json
import uuid

import pytest

from tests.fixtures.agent import HAVE_RUNC
from tests.fixtures.apiserver import make_kubectl
from tests.fixtures.poll import wait_for
from tests.fixtures.scheduler import running_scheduler

pytestmark = [pytest.mark.integration, pytest.mark.runc, pytest.mark.timeout(300)]

_wait = functools.partial(wait_for, every=0.5)  # a kubectl per check: not too often

FIN = "batch.kubernetes.io/job-tracking"


@pytest.fixture(scope="module")
def scheduler(apiserver, tmp_path_factory):
    yield from running_scheduler(apiserver.component_kubeconfig("scheduler"), tmp_path_factory.mktemp("jt-sched"))


def test_job_pods_on_runc_are_counted_once(apiserver, controller_manager, scheduler, start_agent, tmp_path):
    if not HAVE_RUNC:
        pytest.fail("runc tests need root and runc")
    k = make_kubectl(apiserver.kubeconfig, tmp_path / "kc")
    agent = start_agent()
    ns = f"jtr-{uuid.uuid4().hex[:5]}"

    def diag() -> str:
        return (k("get", "pods,jobs", "-n", ns, "-o", "wide", check=False).stdout + "\n" +
                k("get", "events", "-n", ns, check=False).stdout + "\nagent:\n" + agent.log_tail(30) +
                "\ncontroller-manager:\n" + controller_manager.log_tail(20))

    def get(*args: str) -> dict:
        return json.loads(k("get", *args, "-o", "json").stdout)

    def job(name: str, command: list[str], **spec) -> str:
        return json.dumps({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": ns},
                           "spec": {**spec, "template": {"spec": {
                               "restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                               "nodeSelector": {"kubernetes.io/hostname": agent.node},
                               "containers": [{"name": "c", "image": "busybox", "command": command}]}}}})

    def pods(name: str) -> list[dict]:
        return get("pods", "-n", ns, "-l", f"batch.kubernetes.io/job-name={name}")["items"]

    k("create", "namespace", ns)
    try:
        _wait("node registered", lambda: k("get", "node", agent.node, check=False).returncode == 0, 60, diag=diag)
        k("apply", "-f", "-", input=job("ok", ["sh", "-c", "echo done"], completions=2, parallelism=2))
        res = k("wait", "-n", ns, "--for=condition=complete", "job/ok", "--timeout=150s", timeout=170, check=False)
        if res.returncode != 0:
            pytest.fail(f"job/ok not complete: {res.stderr}\n{diag()}")
        st = get("job", "ok", "-n", ns)["status"]
        assert st["succeeded"] == 2 and not st.get("failed") and st["uncountedTerminatedPods"] == {}, st
        done = pods("ok")
        assert len(done) == 2 and all(p["status"]["phase"] == "Succeeded" and FIN not in
                                      (p["metadata"].get("finalizers") or []) for p in done), diag()
        k("delete", "pod", done[0]["metadata"]["name"], "-n", ns, "--timeout=30s", timeout=40)
        assert get("job", "ok", "-n", ns)["status"]["succeeded"] == 2

        # a running pod deleted with kubectl: stopped by the agent, counted as failed once, replaced
        k("apply", "-f", "-", input=job("long", ["sleep", "3600"], backoffLimit=3))

        def running():
            ps = [p for p in pods("long") if p["status"].get("phase") == "Running"
                  and not p["metadata"].get("deletionTimestamp")]
            return ps[0] if ps else None
        first = _wait("long running", running, 150, diag=diag)
        assert FIN in first["metadata"]["finalizers"]
        k("delete", "pod", first["metadata"]["name"], "-n", ns, "--timeout=60s", timeout=70)

        def replaced():
            p = running()
            return p if p and p["metadata"]["uid"] != first["metadata"]["uid"] else None
        _wait("replacement running", replaced, 150, diag=diag)
        st = _wait("failure counted", lambda: (s := get("job", "long", "-n", ns)["status"]).get("failed") == 1
                   and s.get("uncountedTerminatedPods") == {} and s, 60, diag=diag)
        assert st.get("active") == 1, st
        k("delete", "job", "long", "-n", ns, "--timeout=90s", timeout=100)
        _wait("long's pods gone", lambda: not pods("long"), 90, diag=diag)
    finally:
        k("delete", "namespace", ns, "--wait=false", check=False)
        _wait("namespace emptied", lambda: k("get", "pods", "-n", ns, "-o", "name", check=False).stdout.strip() == "",
              90, diag=diag)
