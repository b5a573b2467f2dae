"""Job failure and success policies end to end (real etcd, apiserver, controller-manager,
kubectl): a podFailurePolicy FailJob rule on an exit code, an Ignore rule on DisruptionTarget
(with a terminating pod waited for, podReplacementPolicy Failed), backoffLimitPerIndex with
maxFailedIndexes, a successPolicy, and the apiserver's 422s. Pods have no node agent here: the
test patches their status as a kubelet would (phase, container exit codes, conditions)."""

from __future__ import annotations

import asyncio
import json

import pytest

from controlplane.client import resources as R
from controlplane.client.rest import ApiStatusError
from controlplane.machinery.timestamps import now_rfc3339
from tests.integration.test_controllers_deployment import eventually, new_namespace

pytestmark = pytest.mark.integration

INDEX = "batch.kubernetes.io/job-completion-index"
FAILURES = "batch.kubernetes.io/job-index-failure-count"
CONTAINERS = [{"name": "main", "image": "busybox"}]


def job(name, ns, **spec):
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": ns},
            "spec": {**spec, "template": {"spec": {"restartPolicy": "Never", "containers": CONTAINERS}}}}


async def set_status(client, pod, phase, exit_code=None, conditions=()):
    """What a kubelet reports: the phase, the container's terminated state, conditions."""
    now = now_rfc3339()
    st = {"phase": phase, "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": now},
                                         *({"type": t, "status": "True", "reason": "Test", "lastTransitionTime": now}
                                           for t in conditions)]}
    if exit_code is not None:
        st["containerStatuses"] = [{"name": "main", "image": "busybox", "imageID": "", "ready": False,
                                    "restartCount": 0, "started": False,
                                    "state": {"terminated": {"exitCode": exit_code, "reason": "Error" if exit_code else
                                                             "Completed", "startedAt": now, "finishedAt": now}}}]
    md = pod["metadata"]
    await client.patch(R.PODS, md["name"], {"status": st}, md["namespace"], subresource="status")


async def job_pods(client, ns, name):
    items = (await client.list(R.PODS, ns, label_selector=f"batch.kubernetes.io/job-name={name}"))["items"]
    return sorted(items, key=lambda p: p["metadata"]["creationTimestamp"] + p["metadata"]["name"])


def running(pods):
    return [p for p in pods if p["status"].get("phase") not in ("Succeeded", "Failed")
            and not p["metadata"].get("deletionTimestamp")]


async def running_pods(client, ns, name, n):
    pods = running(await job_pods(client, ns, name))
    return (pods or True) if len(pods) == n else None  # True: none, as asked


async def by_index(client, ns, name, indexes):
    pods = running(await job_pods(client, ns, name))
    got = {int(p["metadata"]["annotations"][INDEX]): p for p in pods}
    return got if sorted(got) == sorted(indexes) and len(pods) == len(indexes) else None


async def condition(client, ns, name, ctype):
    j = await client.get(R.JOBS, name, ns)
    return next((c for c in (j.get("status") or {}).get("conditions") or []
                 if c["type"] == ctype and c["status"] == "True"), None)


def types(j):
    return [c["type"] for c in j["status"].get("conditions") or []]


async def test_fail_job_rule_on_exit_code(apiserver, controller_manager, kubectl, client):
    ns = await new_namespace(client, "pfp")
    spec = job("exit", ns, completions=3, parallelism=2, backoffLimit=6, podFailurePolicy={"rules": [
        {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}},
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]})
    await asyncio.to_thread(kubectl, "apply", "-f", "-", input=json.dumps(spec))
    stored = await client.get(R.JOBS, "exit", ns)
    assert stored["spec"]["podReplacementPolicy"] == "Failed"
    assert stored["spec"]["podFailurePolicy"]["rules"][1]["onPodConditions"][0]["status"] == "True"
    a, b = await eventually(lambda: running_pods(client, ns, "exit", 2))
    await set_status(client, a, "Failed", exit_code=1)       # counted, replaced
    await eventually(lambda: running_pods(client, ns, "exit", 2))
    await set_status(client, b, "Failed", exit_code=42)      # FailJob
    failed = await eventually(lambda: condition(client, ns, "exit", "Failed"))
    msg = f"Container main for pod {ns}/{b['metadata']['name']} failed with exit code 42 matching FailJob rule at index 0"
    assert failed["reason"] == "PodFailurePolicy" and failed["message"] == msg
    j = await client.get(R.JOBS, "exit", ns)
    assert types(j) == ["FailureTarget", "Failed"] and j["status"]["conditions"][0]["message"] == msg
    # a, b and the replacement still running when the Job failed (as Kubernetes counts a failing
    # Job's unfinished pods, through their tracking finalizers)
    assert j["status"]["failed"] == 3 and j["status"].get("active", 0) == 0 and j["status"]["terminating"] == 0
    assert "completionTime" not in j["status"]
    await eventually(lambda: running_pods(client, ns, "exit", 0))   # the replacement was deleted
    out = (await asyncio.to_thread(kubectl, "get", "job", "exit", "-n", ns)).stdout.splitlines()
    assert out[0].split()[:4] == ["NAME", "STATUS", "COMPLETIONS", "DURATION"] and out[1].split()[:3] == ["exit", "Failed", "0/3"]
    desc = (await asyncio.to_thread(kubectl, "describe", "job", "exit", "-n", ns)).stdout
    assert "Pods Statuses:" in desc and "PodFailurePolicy" in desc, desc

    async def warning_event():
        evs = (await client.list(R.EVENTS, ns))["items"]
        return [e for e in evs if e["reason"] == "PodFailurePolicy" and e["type"] == "Warning" and e["message"] == msg]
    await eventually(warning_event)


async def test_ignore_rule_on_disruption_target_waits_for_terminating_pod(apiserver, controller_manager, kubectl, client):
    ns = await new_namespace(client, "pfpi")
    spec = job("evicted", ns, backoffLimit=0, podFailurePolicy={"rules": [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}]})
    await asyncio.to_thread(kubectl, "apply", "-f", "-", input=json.dumps(spec))
    (first,) = await eventually(lambda: running_pods(client, ns, "evicted", 1))
    name = first["metadata"]["name"]
    # bound to a node, so the deletion is graceful: the pod stays, terminating, until its kubelet is done
    await client.bind(ns, name, "ghost-node")
    await client.patch(R.PODS, name, {"status": {"conditions": [
        {"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI",
         "lastTransitionTime": now_rfc3339()}]}}, ns, subresource="status")
    await client.delete(R.PODS, name, ns)

    async def terminating_counted():
        j = await client.get(R.JOBS, "evicted", ns)
        return j if (j.get("status") or {}).get("terminating") == 1 else None
    await eventually(terminating_counted)
    await asyncio.sleep(1.0)
    assert len(await job_pods(client, ns, "evicted")) == 1, "podReplacementPolicy Failed: no replacement yet"
    gone = await client.get(R.PODS, name, ns)
    await set_status(client, gone, "Failed", exit_code=137, conditions=["DisruptionTarget"])
    (second,) = await eventually(lambda: running_pods(client, ns, "evicted", 1))
    assert second["metadata"]["name"] != name
    await client.delete(R.PODS, name, ns, grace_period_seconds=0)  # the kubelet is done with it
    j = await client.get(R.JOBS, "evicted", ns)
    assert "Failed" not in types(j) and not j["status"].get("failed"), "an ignored failure is not counted"
    await set_status(client, second, "Succeeded", exit_code=0)
    complete = await eventually(lambda: condition(client, ns, "evicted", "Complete"))
    assert complete["reason"] == "CompletionsReached" and complete["message"] == "Reached expected number of succeeded pods"
    j = await client.get(R.JOBS, "evicted", ns)
    assert types(j) == ["SuccessCriteriaMet", "Complete"] and j["status"].get("completionTime")
    assert j["status"]["succeeded"] == 1 and not j["status"].get("failed")


async def test_backoff_limit_per_index(apiserver, controller_manager, kubectl, client):
    ns = await new_namespace(client, "blpi")
    spec = job("perindex", ns, completionMode="Indexed", completions=3, parallelism=3, backoffLimitPerIndex=1,
               maxFailedIndexes=1)
    await asyncio.to_thread(kubectl, "apply", "-f", "-", input=json.dumps(spec))
    stored = await client.get(R.JOBS, "perindex", ns)
    assert stored["spec"]["backoffLimit"] == 2**31 - 1
    pods = await eventually(lambda: by_index(client, ns, "perindex", [0, 1, 2]))
    assert all(p["metadata"]["annotations"][FAILURES] == "0" for p in pods.values())
    await set_status(client, pods[0], "Failed", exit_code=1)
    pods = await eventually(lambda: by_index(client, ns, "perindex", [0, 1, 2]))
    assert pods[0]["metadata"]["annotations"][FAILURES] == "1"      # the second attempt of index 0
    await set_status(client, pods[0], "Failed", exit_code=1)        # index 0 has failed for good
    await eventually(lambda: by_index(client, ns, "perindex", [1, 2]))

    async def failed_indexes(text, failed):
        j = await client.get(R.JOBS, "perindex", ns)  # the failure is recorded, then counted
        st = j.get("status") or {}
        return j if st.get("failedIndexes") == text and st.get("failed") == failed else None
    j = await eventually(lambda: failed_indexes("0", 2))
    assert "Failed" not in types(j) and not j["status"]["uncountedTerminatedPods"]
    await set_status(client, pods[1], "Succeeded", exit_code=0)
    await set_status(client, pods[2], "Succeeded", exit_code=0)
    failed = await eventually(lambda: condition(client, ns, "perindex", "Failed"))
    assert (failed["reason"], failed["message"]) == ("FailedIndexes", "Job has failed indexes")
    j = await client.get(R.JOBS, "perindex", ns)
    assert j["status"]["completedIndexes"] == "1,2" and j["status"]["failedIndexes"] == "0"
    assert types(j) == ["FailureTarget", "Failed"]

    spec = job("maxed", ns, completionMode="Indexed", completions=3, parallelism=3, backoffLimitPerIndex=0,
               maxFailedIndexes=0)
    await asyncio.to_thread(kubectl, "apply", "-f", "-", input=json.dumps(spec))
    pods = await eventually(lambda: by_index(client, ns, "maxed", [0, 1, 2]))
    await set_status(client, pods[1], "Failed", exit_code=3)
    failed = await eventually(lambda: condition(client, ns, "maxed", "Failed"))
    assert (failed["reason"], failed["message"]) == (
        "MaxFailedIndexesExceeded", "Job has exceeded the specified maximal number of failed indexes")
    await eventually(lambda: running_pods(client, ns, "maxed", 0))  # the other indexes' pods are deleted
    assert (await client.get(R.JOBS, "maxed", ns))["status"]["failedIndexes"] == "1"


async def test_success_policy(apiserver, controller_manager, kubectl, client):
    ns = await new_namespace(client, "spol")
    spec = job("leader", ns, completionMode="Indexed", completions=3, parallelism=3,
               successPolicy={"rules": [{"succeededIndexes": "0"}]})
    await asyncio.to_thread(kubectl, "apply", "-f", "-", input=json.dumps(spec))
    pods = await eventually(lambda: by_index(client, ns, "leader", [0, 1, 2]))
    await set_status(client, pods[1], "Succeeded", exit_code=0)
    await asyncio.sleep(0.5)
    assert await condition(client, ns, "leader", "SuccessCriteriaMet") is None, "index 1 is not the rule's"
    await set_status(client, pods[0], "Succeeded", exit_code=0)
    complete = await eventually(lambda: condition(client, ns, "leader", "Complete"))
    assert (complete["reason"], complete["message"]) == ("SuccessPolicy", "Matched rules at index 0")
    j = await client.get(R.JOBS, "leader", ns)
    assert types(j) == ["SuccessCriteriaMet", "Complete"] and j["status"]["completedIndexes"] == "0,1"
    assert j["status"].get("completionTime")
    await eventually(lambda: running_pods(client, ns, "leader", 0))  # index 2's pod is terminated
    out = await asyncio.to_thread(kubectl, "wait", "--for=condition=complete", "job/leader", "-n", ns, "--timeout=10s")
    assert "condition met" in out.stdout


@pytest.mark.parametrize("extra,message", [
    ({"podFailurePolicy": {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [1]}}]},
      "restart": "OnFailure"},
     'spec.template.spec.restartPolicy: Invalid value: "OnFailure": only "Never" is supported when podFailurePolicy '
     "is specified"),
    ({"podFailurePolicy": {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [0, 1]}}]}},
     "spec.podFailurePolicy.rules[0].onExitCodes.values[0]: Invalid value: 0: must not be 0 for the In operator"),
    ({"podFailurePolicy": {"rules": [{"action": "Ignore", "onExitCodes": {"operator": "NotIn", "values": [3, 1]}}]}},
     "spec.podFailurePolicy.rules[0].onExitCodes.values: Invalid value: []int32{3, 1}: must be ordered"),
    ({"backoffLimitPerIndex": 1}, "spec.backoffLimitPerIndex: Invalid value: 1: requires indexed completion mode"),
    ({"completionMode": "Indexed", "completions": 2, "backoffLimitPerIndex": 1, "maxFailedIndexes": 3},
     "spec.maxFailedIndexes: Invalid value: 3: must be less than or equal to completions"),
    ({"completionMode": "Indexed", "completions": 2, "successPolicy": {"rules": [{"succeededIndexes": "1-5"}]}},
     'spec.successPolicy.rules[0].succeededIndexes: Invalid value: "1-5": error parsing succeededIndexes: '
     'too large index: "5"'),
], ids=["restart-policy", "zero-in", "unordered", "per-index-nonindexed", "max-failed", "success-indexes"])
async def test_policy_validation_422(apiserver, kubectl, client, extra, message):
    ns = await new_namespace(client, "pv")
    extra = dict(extra)
    restart = extra.pop("restart", "Never")
    bad = job("bad", ns, **extra)
    bad["spec"]["template"]["spec"]["restartPolicy"] = restart
    res = await asyncio.to_thread(kubectl, "apply", "-f", "-", input=json.dumps(bad), check=False)
    assert res.returncode != 0 and 'The Job "bad" is invalid' in res.stderr and message in res.stderr, res.stderr
    with pytest.raises(ApiStatusError) as e:
        await client.create(R.JOBS, bad, ns)
    assert e.value.code == 422 and e.value.reason == "Invalid"


async def test_policies_immutable(apiserver, kubectl, client):
    ns = await new_namespace(client, "pvi")
    ok = job("fixed", ns, completionMode="Indexed", completions=2, backoffLimitPerIndex=1)
    await asyncio.to_thread(kubectl, "apply", "-f", "-", input=json.dumps(ok))
    res = await asyncio.to_thread(kubectl, "patch", "job", "fixed", "-n", ns, "--type=merge", "-p",
                                  json.dumps({"spec": {"backoffLimitPerIndex": 2}}), check=False)
    assert res.returncode != 0 and "spec.backoffLimitPerIndex: Invalid value: 2: field is immutable" in res.stderr, res.stderr


async def test_suspend_and_resume(apiserver, controller_manager, kubectl, client):
    ns = await new_namespace(client, "susp")
    spec = job("later", ns, completions=2, parallelism=2, suspend=True, activeDeadlineSeconds=600)
    await asyncio.to_thread(kubectl, "apply", "-f", "-", input=json.dumps(spec))
    suspended = await eventually(lambda: condition(client, ns, "later", "Suspended"))
    assert (suspended["reason"], suspended["message"]) == ("JobSuspended", "Job suspended")
    j = await client.get(R.JOBS, "later", ns)
    assert "startTime" not in j["status"] and not await job_pods(client, ns, "later")
    out = (await asyncio.to_thread(kubectl, "get", "job", "later", "-n", ns)).stdout.splitlines()
    assert out[1].split()[:3] == ["later", "Suspended", "0/2"], out
    await asyncio.to_thread(kubectl, "patch", "job", "later", "-n", ns, "--type=merge", "-p", '{"spec":{"suspend":false}}')
    await eventually(lambda: running_pods(client, ns, "later", 2))

    async def resumed():
        j = await client.get(R.JOBS, "later", ns)
        c = next((c for c in j["status"].get("conditions") or [] if c["type"] == "Suspended"), None)
        return j if c and (c["status"], c["reason"], c["message"]) == ("False", "JobResumed", "Job resumed") else None
    j = await eventually(resumed)
    assert j["status"].get("startTime")
    await asyncio.to_thread(kubectl, "patch", "job", "later", "-n", ns, "--type=merge", "-p", '{"spec":{"suspend":true}}')
    await eventually(lambda: running_pods(client, ns, "later", 0))   # suspending deletes the running pods
    await eventually(lambda: condition(client, ns, "later", "Suspended"))

    async def events(reason):
        return [e for e in (await client.list(R.EVENTS, ns))["items"] if e["reason"] == reason]
    await eventually(lambda: events("Resumed"))


async def test_work_queue_lets_the_others_finish(apiserver, controller_manager, kubectl, client):
    """No completions: once a pod succeeded no new pod starts, the running ones are left to end."""
    ns = await new_namespace(client, "wq")
    spec = job("queue", ns, parallelism=2)
    await asyncio.to_thread(kubectl, "apply", "-f", "-", input=json.dumps(spec))
    a, b = await eventually(lambda: running_pods(client, ns, "queue", 2))
    await set_status(client, a, "Succeeded", exit_code=0)

    async def succeeded_one():
        j = await client.get(R.JOBS, "queue", ns)
        return j if (j.get("status") or {}).get("succeeded") == 1 else None
    await eventually(succeeded_one)
    await asyncio.sleep(0.5)
    assert [p["metadata"]["name"] for p in running(await job_pods(client, ns, "queue"))] == [b["metadata"]["name"]]
    assert await condition(client, ns, "queue", "Complete") is None
    await set_status(client, b, "Succeeded", exit_code=0)
    await eventually(lambda: condition(client, ns, "queue", "Complete"))
