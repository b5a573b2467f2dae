"""Job pod-tracking finalizers end to end (real etcd, apiserver, controller-manager, kubectl;
pod phases patched by the test as a kubelet would): a Job's pods carry
``batch.kubernetes.io/job-tracking`` while they run and lose it once counted; ``status.ready``
follows the ready pods; ``kubectl delete pod`` of a pod right after it succeeded, or of pods
that finished or were deleted while the controller-manager was down, still leaves
``succeeded`` / ``failed`` right (each pod counted once); ``kubectl delete job
--cascade=orphan`` and a plain delete leave no pod stuck with the finalizer; the pod GC
controller strips it from pods whose Job is gone when the Job controller does not run."""

from __future__ import annotations

import asyncio
import json

import pytest

from controlplane.client import resources as R
from controlplane.client.rest import ApiStatusError
from tests.fixtures.controllers import JOB_BACKOFF_ARGS, ControllerManagerProcess
from tests.integration.test_controllers_deployment import eventually, new_namespace
from tests.integration.test_controllers_job_policies import job, job_pods, running_pods, set_status

pytestmark = pytest.mark.integration

FIN = "batch.kubernetes.io/job-tracking"


def synced_count(cm: ControllerManagerProcess) -> int:
    try:
        return cm.log_path.read_text(errors="replace").count("caches synced")
    except OSError:
        return 0


async def start_synced(cm: ControllerManagerProcess) -> None:
    """Start ``cm`` and wait until it leads and its caches synced (a new line in its log)."""
    before = synced_count(cm)
    cm.start()

    async def synced():
        return synced_count(cm) > before or not cm.alive()
    await eventually(synced, timeout=60)
    assert cm.alive(), cm.log_tail()


async def status_is(client, ns, name, **want):
    j = await client.get(R.JOBS, name, ns)
    st = j.get("status") or {}
    return j if all(st.get(k, 0 if k in ("succeeded", "failed", "active") else None) == v
                    for k, v in want.items()) else None


async def gone(client, ns, name):
    try:
        await client.get(R.PODS, name, ns)
    except ApiStatusError as e:
        if e.not_found:
            return True
        raise
    return False


def finalizers(p):
    return p["metadata"].get("finalizers") or []


async def condition(client, ns, name, ctype):
    j = await client.get(R.JOBS, name, ns)
    return any(c["type"] == ctype and c["status"] == "True" for c in (j.get("status") or {}).get("conditions") or [])


async def test_pods_carry_the_finalizer_until_counted(apiserver, controller_manager, kubectl, client):
    ns = await new_namespace(client, "jtf")
    await asyncio.to_thread(kubectl, "apply", "-f", "-", input=json.dumps(job("work", ns, completions=2, parallelism=2)))
    a, b = await eventually(lambda: running_pods(client, ns, "work", 2))
    assert FIN in finalizers(a) and FIN in finalizers(b)
    out = (await asyncio.to_thread(kubectl, "get", "pod", a["metadata"]["name"], "-n", ns,
                                   "-o", "jsonpath={.metadata.finalizers}")).stdout
    assert FIN in out
    # status.ready follows the Ready condition of the running pods
    await client.patch(R.PODS, a["metadata"]["name"], {"status": {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True"}]}}, ns, subresource="status")
    j = await eventually(lambda: status_is(client, ns, "work", ready=1, active=2))
    assert j["status"]["uncountedTerminatedPods"] == {} and j["status"]["terminating"] == 0
    await set_status(client, a, "Succeeded", exit_code=0)
    j = await eventually(lambda: status_is(client, ns, "work", succeeded=1, ready=0, active=1))
    assert j["status"]["uncountedTerminatedPods"] == {}
    a_now = await client.get(R.PODS, a["metadata"]["name"], ns)
    assert FIN not in finalizers(a_now), "counted: the finalizer is gone"
    assert FIN in finalizers(await client.get(R.PODS, b["metadata"]["name"], ns)), "still running: kept"
    await set_status(client, b, "Succeeded", exit_code=0)
    await eventually(lambda: condition(client, ns, "work", "Complete"))
    j = await client.get(R.JOBS, "work", ns)
    assert j["status"]["succeeded"] == 2 and not j["status"].get("failed")
    assert not any(FIN in finalizers(p) for p in await job_pods(client, ns, "work"))


async def test_succeeded_pod_deleted_right_after_it_finished(apiserver, controller_manager, kubectl, client):
    ns = await new_namespace(client, "jtfdel")
    await asyncio.to_thread(kubectl, "apply", "-f", "-", input=json.dumps(job("once", ns)))
    (p,) = await eventually(lambda: running_pods(client, ns, "once", 1))
    name = p["metadata"]["name"]
    await set_status(client, p, "Succeeded", exit_code=0)
    await asyncio.to_thread(kubectl, "delete", "pod", name, "-n", ns, "--wait=false")
    await eventually(lambda: condition(client, ns, "once", "Complete"))
    j = await client.get(R.JOBS, "once", ns)
    assert j["status"]["succeeded"] == 1 and not j["status"].get("failed") and j["status"]["uncountedTerminatedPods"] == {}
    await eventually(lambda: gone(client, ns, name))
    creates = [e for e in (await client.list(R.EVENTS, ns))["items"]
               if e["reason"] == "SuccessfulCreate" and e["involvedObject"]["name"] == "once"]
    assert sum(int(e.get("count") or 1) for e in creates) == 1, "the deleted success was not re-run"


async def test_finished_and_deleted_while_the_controller_is_down(apiserver, controller_manager, kubectl, client):
    """Pods that finish and are deleted while no controller runs are kept by the finalizer and
    counted once after the restart: a deleted success as succeeded, a deleted running pod as
    failed (podReplacementPolicy TerminatingOrFailed), each exactly once."""
    ns = await new_namespace(client, "jtfdown")
    await asyncio.to_thread(kubectl, "apply", "-f", "-", input=json.dumps(job("down", ns, completions=2, parallelism=2)))
    a, b = await eventually(lambda: running_pods(client, ns, "down", 2))
    controller_manager.stop()
    try:
        await set_status(client, a, "Succeeded", exit_code=0)
        for p in (a, b):
            await asyncio.to_thread(kubectl, "delete", "pod", p["metadata"]["name"], "-n", ns, "--wait=false")
        for p in (a, b):
            kept = await client.get(R.PODS, p["metadata"]["name"], ns)
            assert kept["metadata"].get("deletionTimestamp") and FIN in finalizers(kept), kept["metadata"]
    finally:
        await start_synced(controller_manager)
    j = await eventually(lambda: status_is(client, ns, "down", succeeded=1, failed=1), timeout=40)
    assert j["status"]["uncountedTerminatedPods"] == {}
    for p in (a, b):
        await eventually(lambda p=p: gone(client, ns, p["metadata"]["name"]))
    (c,) = await eventually(lambda: running_pods(client, ns, "down", 1))   # b's replacement
    await set_status(client, c, "Succeeded", exit_code=0)
    await eventually(lambda: condition(client, ns, "down", "Complete"))
    j = await client.get(R.JOBS, "down", ns)
    assert (j["status"]["succeeded"], j["status"]["failed"]) == (2, 1)


@pytest.mark.parametrize("cascade", ["orphan", "background"])
async def test_deleted_job_leaves_no_pod_with_the_finalizer(apiserver, controller_manager, kubectl, client, cascade):
    ns = await new_namespace(client, "jtfgc")
    await asyncio.to_thread(kubectl, "apply", "-f", "-", input=json.dumps(job("bye", ns, completions=3, parallelism=2)))
    a, b = await eventually(lambda: running_pods(client, ns, "bye", 2))
    await set_status(client, a, "Succeeded", exit_code=0)
    await eventually(lambda: status_is(client, ns, "bye", succeeded=1))
    pods = await job_pods(client, ns, "bye")
    await asyncio.to_thread(kubectl, "delete", "job", "bye", "-n", ns, f"--cascade={cascade}")

    async def job_gone():
        try:
            await client.get(R.JOBS, "bye", ns)
        except ApiStatusError as e:
            return e.not_found
        return False
    await eventually(job_gone)
    if cascade == "orphan":
        async def released():
            now = [await client.get(R.PODS, p["metadata"]["name"], ns) for p in pods]
            return now if all(not finalizers(p) and not p["metadata"].get("ownerReferences") for p in now) else None
        now = await eventually(released)
        assert all(not p["metadata"].get("deletionTimestamp") for p in now), "orphaned pods stay"
    else:
        for p in pods:
            await eventually(lambda p=p: gone(client, ns, p["metadata"]["name"]))


async def test_podgc_releases_pods_whose_job_is_gone(apiserver, controller_manager, kubectl, client, tmp_path,
                                                    monkeypatch):
    """With the Job controller off, the pod GC sweep (every second here) removes the finalizer
    from a pod no Job controls, and from a Job's pod once the Job is deleted; a live Job's pod
    keeps it."""
    ns = await new_namespace(client, "jtfpgc")
    await asyncio.to_thread(kubectl, "apply", "-f", "-", input=json.dumps(job("held", ns, suspend=True)))
    held = await client.get(R.JOBS, "held", ns)
    ref = {"apiVersion": "batch/v1", "kind": "Job", "name": "held", "uid": held["metadata"]["uid"],
           "controller": True, "blockOwnerDeletion": True}

    def pod(name, owners):
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": ns, "finalizers": [FIN], "ownerReferences": owners},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]}}
    controller_manager.stop()
    monkeypatch.setenv("CONTROLPLANE_PODGC_PERIOD", "1")
    solo = ControllerManagerProcess(tmp_path / "cm", apiserver.component_kubeconfig("controller-manager"),
                                    [*JOB_BACKOFF_ARGS, "--controllers", "*,-job"])
    try:
        await start_synced(solo)
        await client.create(R.PODS, pod("owned", [ref]), ns)
        await client.create(R.PODS, pod("stray", []), ns)

        async def released(name):
            p = await client.get(R.PODS, name, ns)
            return p if not finalizers(p) else None
        await eventually(lambda: released("stray"))
        await asyncio.sleep(2.5)  # two more sweeps
        assert FIN in finalizers(await client.get(R.PODS, "owned", ns)), "its Job exists: kept"
        await asyncio.to_thread(kubectl, "delete", "job", "held", "-n", ns, "--wait=false")
        await eventually(lambda: gone(client, ns, "owned"), timeout=40)   # collected, then released
    finally:
        solo.stop()
        monkeypatch.delenv("CONTROLPLANE_PODGC_PERIOD")
        await start_synced(controller_manager)
