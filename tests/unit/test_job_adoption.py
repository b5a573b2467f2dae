"""Job pod adoption and release (``controllerutil.claim_objects`` over pods with the
``batch.kubernetes.io/job-tracking`` finalizer, as Kubernetes' ``PodControllerRefManager`` built
by the Job controller's ``getPodsForJob``): which pods a Job keeps, adopts and releases, the
patches it sends (the finalizer added on adoption and removed on release, the pod's
resourceVersion as a precondition of an adoption), the re-check of the Job before adopting, the
orphan index, an orphan's finalizer kept once a Job adopted it, and adopted finished pods
counted once."""

from __future__ import annotations

import asyncio
import copy

import pytest

from controlplane.client import resources as R
from controlplane.client.rest import ApiStatusError
from controlplane.controllers import controllerutil as cu
from controlplane.controllers import job as jobc
from controlplane.controllers import jobtracking as jt

FIN = jt.FINALIZER
SELECTOR = {"matchLabels": {"app": "batch"}}


def job(uid="j-uid", deleting=False, selector=SELECTOR, status=None):
    md = {"name": "j", "namespace": "ns", "uid": uid}
    if deleting:
        md["deletionTimestamp"] = "2026-12-07T00:00:00Z"
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": md,
            "spec": {"selector": selector, "completions": 2, "parallelism": 2,
                     "template": {"spec": {"restartPolicy": "Never"}}},
            "status": status or {}}


def pod(name, phase="Running", labels=None, owner=None, kind="Job", tracked=False, deleting=False, ns="ns"):
    md = {"name": name, "namespace": ns, "uid": f"uid-{name}", "resourceVersion": "7",
          "labels": labels if labels is not None else {"app": "batch"}}
    if owner is not None:
        md["ownerReferences"] = [{"apiVersion": "batch/v1" if kind == "Job" else "apps/v1", "kind": kind,
                                  "name": "x", "uid": owner, "controller": True}]
    if tracked:
        md["finalizers"] = [FIN]
    if deleting:
        md["deletionTimestamp"] = "2026-12-07T00:00:00Z"
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "status": {"phase": phase}}


def match(j):
    return cu.selector_matcher(j["spec"]["selector"])


@pytest.mark.parametrize("j,p,expected", [
    (job(), pod("a", owner="j-uid"), "keep"),
    (job(), pod("a"), "adopt"),                                           # a matching orphan
    (job(), pod("a", "Succeeded"), "adopt"),                              # finished ones too
    (job(), pod("a", labels={"app": "web"}), "ignore"),                   # not matching
    (job(), pod("a", owner="other-job"), "ignore"),                       # another Job's
    (job(), pod("a", owner="rs-1", kind="ReplicaSet"), "ignore"),         # another controller's
    (job(), pod("a", labels={"app": "web"}, owner="j-uid"), "release"),   # ours, relabelled
    (job(), pod("a", deleting=True), "ignore"),                           # an orphan being deleted
    (job(), pod("a", ns="other"), "ignore"),                              # another namespace
    (job(deleting=True), pod("a"), "ignore"),                             # a Job being deleted adopts nothing
    (job(deleting=True), pod("a", labels={"app": "web"}, owner="j-uid"), "ignore"),  # nor releases
], ids=["owned", "orphan", "orphan-finished", "not-matching", "other-job", "other-kind", "relabelled",
        "orphan-deleting", "other-namespace", "job-deleting", "job-deleting-no-release"])
def test_claim_plan_for_pods(j, p, expected):
    keep, adopt, release = cu.claim_plan(j, [p], match(j))
    assert ("keep" if keep else "adopt" if adopt else "release" if release else "ignore") == expected


def test_pod_patches_carry_the_finalizer_and_preconditions():
    j, p = job(), pod("a")
    assert cu.adopt_patch(j, p, (FIN,), resource_version=True) == {"metadata": {
        "uid": "uid-a", "resourceVersion": "7", "finalizers": [FIN], "ownerReferences": [
            {"apiVersion": "batch/v1", "kind": "Job", "name": "j", "uid": "j-uid", "controller": True,
             "blockOwnerDeletion": True}]}}
    assert cu.release_patch("j-uid", p, (FIN,)) == {"metadata": {
        "uid": "uid-a", "ownerReferences": [{"$patch": "delete", "uid": "j-uid"}],
        "$deleteFromPrimitiveList/finalizers": [FIN]}}


class FakeClient:
    """Records pod patches and applies the adoption's finalizer and reference to the answer;
    ``fail`` maps a pod name to the ApiStatusError its patch raises."""

    def __init__(self, pods, fail=None):
        self.pods = {p["metadata"]["name"]: p for p in pods}
        self.patches = []
        self.fail = fail or {}

    async def patch(self, res, name, body, namespace=None, *, patch_type="merge"):
        self.patches.append((res.plural, name, patch_type, body))
        if name in self.fail:
            raise self.fail[name]
        got = copy.deepcopy(self.pods[name])
        md = body["metadata"]
        if md.get("finalizers"):
            got["metadata"]["finalizers"] = sorted(set(got["metadata"].get("finalizers") or []) | set(md["finalizers"]))
        if md["ownerReferences"][0].get("controller"):
            got["metadata"]["ownerReferences"] = md["ownerReferences"]
        return got


def claim(client, j, pods, can_adopt=None):
    checks = []

    async def ok():
        checks.append(1)
    return asyncio.run(cu.claim_objects(client, R.PODS, j, pods, match(j), can_adopt or ok,
                                        finalizers=(FIN,), resource_version=True)), checks


def test_claim_adopts_with_the_finalizer_and_releases_without_it():
    pods = [pod("kept", owner="j-uid", tracked=True), pod("done", "Succeeded"), pod("run"),
            pod("stale", labels={"app": "web"}, owner="j-uid", tracked=True), pod("theirs", owner="rs", kind="ReplicaSet")]
    client = FakeClient(pods)
    got, checks = claim(client, job(), pods)
    assert [p["metadata"]["name"] for p in got] == ["kept", "done", "run"]
    assert all(FIN in p["metadata"]["finalizers"] for p in got), "adopted pods are tracked from now on"
    assert [(res, n, t) for res, n, t, _ in client.patches] == [
        ("pods", "stale", "strategic"), ("pods", "done", "strategic"), ("pods", "run", "strategic")]
    assert client.patches[0][3]["metadata"]["$deleteFromPrimitiveList/finalizers"] == [FIN]
    assert client.patches[1][3]["metadata"]["resourceVersion"] == "7"
    assert checks == [1], "the Job is re-checked once, before the first adoption"


def test_claim_job_gone_adopts_nothing():
    async def gone():
        raise ApiStatusError(409, "Conflict", "original Job ns/j is gone")
    client = FakeClient([pod("a")])
    with pytest.raises(ApiStatusError, match="is gone"):
        claim(client, job(), [pod("a")], can_adopt=gone)
    assert client.patches == []


@pytest.mark.parametrize("code,raised", [(404, False), (409, True), (500, True)])
def test_claim_adoption_errors(code, raised):
    """A vanished pod is skipped; a conflict (the cache was stale) or another error is raised
    once the others were tried, so the Job is synced again."""
    pods = [pod("a"), pod("b")]
    client = FakeClient(pods, {"a": ApiStatusError(code, "X", "m")})
    if raised:
        with pytest.raises(ApiStatusError):
            claim(client, job(), pods)
    else:
        got, _ = claim(client, job(), pods)
        assert [p["metadata"]["name"] for p in got] == ["b"]
    assert [n for _, n, _, _ in client.patches] == ["a", "b"]


@pytest.mark.parametrize("p,indexed", [
    (pod("a"), ["ns"]),
    (pod("a", owner="j-uid"), []),
    (pod("a", owner="rs", kind="ReplicaSet"), []),
    ({"metadata": {"name": "a", "namespace": "ns", "ownerReferences": [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "c", "uid": "c"}]}}, ["ns"]),   # no controller
])
def test_orphan_index(p, indexed):
    assert jobc.orphan_namespace_index(p) == indexed


class FinalizerClient:
    """The first update conflicts; the fresh GET returns ``fresh``."""

    def __init__(self, fresh):
        self.fresh = fresh
        self.updates = []

    async def get(self, res, name, namespace=None):
        return copy.deepcopy(self.fresh)

    async def update(self, res, obj):
        self.updates.append(obj)
        if len(self.updates) == 1:
            raise ApiStatusError(409, "Conflict", "modified")
        return obj


@pytest.mark.parametrize("fresh_owner,removed", [(None, True), ("j-uid", False)], ids=["still-orphan", "adopted"])
def test_orphan_finalizer_kept_when_adopted_meanwhile(fresh_owner, removed):
    client = FinalizerClient(pod("a", owner=fresh_owner, tracked=True))
    assert asyncio.run(cu.remove_finalizer(client, R.PODS, pod("a", tracked=True), FIN,
                                           unless=lambda p: cu.controller_ref(p) is not None))
    assert len(client.updates) == (2 if removed else 1)
    if removed:
        assert FIN not in client.updates[1]["metadata"]["finalizers"]


def test_adopted_finished_pods_are_counted_once():
    """After ``--cascade=orphan`` the orphan queue stripped the finalizer; the adoption adds it
    back (as upstream), so the new Job counts the pod once, and not again once it is gone."""
    j = job()
    pods = [pod("s", "Succeeded"), pod("f", "Failed"), pod("r")]
    adopted, _ = claim(FakeClient(pods), j, pods)
    counts = jobc.count_pods(j, adopted)
    assert (counts.succeeded, counts.failed, len(counts.active)) == (1, 1, 1)
    plan = jt.plan_tracking(j, adopted)
    assert sorted(p["metadata"]["name"] for p in plan.remove) == ["f", "s"]
    assert (plan.uncounted_succeeded, plan.uncounted_failed) == (["uid-s"], ["uid-f"])
    status = {"uncountedTerminatedPods": jt.uncounted_status(plan.uncounted_succeeded, plan.uncounted_failed)}
    jt.clean_uncounted(status, {"uid-r"})   # their finalizers removed
    assert (status["succeeded"], status["failed"]) == (1, 1)
    after = [copy.deepcopy(p) for p in adopted]
    for p in after:
        if p["metadata"]["name"] != "r":
            p["metadata"]["finalizers"] = []
    counts = jobc.count_pods({**j, "status": status}, after)
    assert (counts.succeeded, counts.failed) == (1, 1)
