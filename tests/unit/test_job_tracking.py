"""Job pod-tracking finalizers, pure (``controlplane/controllers/jobtracking.py`` and the counts
of ``job.count_pods``): what counts as a new finished pod, what one sync records and which
finalizers it removes, moving recorded UIDs into the counters, and whole sequences of syncs
(a finished pod seen once, a pod deleted before it was seen finished, a controller restart
between the steps with UIDs left in ``uncountedTerminatedPods``) ending with every pod counted
exactly once. Also podgc's pick of pods whose Job is gone."""

from __future__ import annotations

import copy

import pytest

from controlplane.controllers import job as jobc
from controlplane.controllers import jobtracking as jt
from controlplane.controllers import jobutil as ju
from controlplane.controllers.podgc import job_gone, plan as podgc_plan

FIN = jt.FINALIZER


def pod(uid, phase="Running", *, tracked=True, deleting=False, index=None, failures=None, exit_code=None,
        conditions=(), owner="j-uid", finished="2026-12-07T00:00:05Z"):
    md = {"name": uid, "namespace": "ns", "uid": uid, "creationTimestamp": "2026-12-07T00:00:00Z",
          "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "j", "uid": owner,
                               "controller": True}] if owner else []}
    if tracked:
        md["finalizers"] = [FIN]
    if deleting:
        md["deletionTimestamp"] = "2026-12-07T00:00:10Z"
    ann = {}
    if index is not None:
        ann[ju.INDEX_KEY] = str(index)
    if failures is not None:
        ann[ju.FAILURE_COUNT_KEY] = str(failures)
    if ann:
        md["annotations"] = ann
    st: dict = {"phase": phase, "conditions": [{"type": t, "status": "True"} for t in conditions]}
    if exit_code is not None:
        st["containerStatuses"] = [{"name": "main", "state": {"terminated": {"exitCode": exit_code,
                                                                             "finishedAt": finished}}}]
    return {"metadata": md, "spec": {"nodeName": "n1"}, "status": st}


def job(spec=None, *, succeeded=None, failed=None, uncounted=None, completed=None, deleting=False, **status):
    st = dict(status)
    if succeeded is not None:
        st["succeeded"] = succeeded
    if failed is not None:
        st["failed"] = failed
    if uncounted is not None:
        st["uncountedTerminatedPods"] = uncounted
    if completed is not None:
        st["completedIndexes"] = completed
    md = {"name": "j", "namespace": "ns", "uid": "j-uid"}
    if deleting:
        md["deletionTimestamp"] = "2026-12-07T00:01:00Z"
    return {"metadata": md, "spec": {"completions": 3, "parallelism": 3, "backoffLimit": 6, **(spec or {})},
            "status": st}


INDEXED = {"completionMode": "Indexed", "completions": 3}
IGNORE_DISRUPTION = {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget",
                                                                         "status": "True"}]}]}


# -- what counts -----------------------------------------------------------------------------------

@pytest.mark.parametrize("j,pods,expected_rm,succeeded,failed", [
    (job(), [pod("a", "Succeeded")], (), 1, 0),                                        # finished, seen once
    (job(uncounted={"succeeded": ["a"]}), [pod("a", "Succeeded")], (), 1, 0),           # recorded: not twice
    (job(succeeded=1), [pod("a", "Succeeded", tracked=False)], (), 1, 0),               # counted already
    (job(succeeded=1), [pod("a", "Succeeded")], ("a",), 1, 0),                          # removal not seen yet
    (job(succeeded=1, uncounted={"succeeded": ["gone"]}), [], (), 2, 0),                # recorded, pod gone since
    (job(), [pod("a", "Failed")], (), 0, 1),
    (job(), [pod("a", deleting=True)], (), 0, 1),                                       # deleted before finishing
    (job(), [pod("a", "Succeeded", deleting=True)], (), 1, 0),                          # deleted after succeeding
    (job({"podReplacementPolicy": "Failed"}), [pod("a", deleting=True)], (), 0, 0),     # waits for Failed
    (job({"podFailurePolicy": IGNORE_DISRUPTION}), [pod("a", "Failed", conditions=["DisruptionTarget"])], (), 0, 0),
    (job(failed=2, uncounted={"failed": ["b"]}), [pod("b", "Failed"), pod("c", "Failed")], (), 0, 4),
    (job(INDEXED, completed="0"), [pod("a", "Succeeded", index=0), pod("b", "Succeeded", index=2)], (), 2, 0),
    (job(INDEXED, completed="0-1"), [pod("x", "Succeeded", index=7)], (), 2, 0),        # out of range
], ids=["seen-once", "recorded", "counted", "removal-pending", "recorded-pod-gone", "failed", "deleted-running",
        "deleted-succeeded", "replace-failed-only", "ignored", "failed-mixed", "indexed", "indexed-out-of-range"])
def test_count_pods(j, pods, expected_rm, succeeded, failed):
    counts = jobc.count_pods(j, pods, frozenset(expected_rm))
    assert (counts.succeeded, counts.failed) == (succeeded, failed)


@pytest.mark.parametrize("spec,p,failed", [
    ({}, pod("a", "Failed"), True),
    ({}, pod("a", deleting=True), True),
    ({}, pod("a", "Succeeded", deleting=True), False),
    ({}, pod("a"), False),
    ({"podReplacementPolicy": "Failed"}, pod("a", deleting=True), False),
    ({"podFailurePolicy": IGNORE_DISRUPTION}, pod("a", deleting=True), False),
    ({"podFailurePolicy": IGNORE_DISRUPTION}, pod("a", "Failed", deleting=True), True),
], ids=["failed", "deleted", "deleted-succeeded", "running", "replace-failed", "policy", "policy-failed"])
def test_is_pod_failed(spec, p, failed):
    assert ju.is_pod_failed(p, spec) is failed


# -- one sync's plan -------------------------------------------------------------------------------

def names(pods):
    return sorted(p["metadata"]["uid"] for p in pods)


@pytest.mark.parametrize("j,pods,finished,remove,unc_s,unc_f", [
    (job(), [pod("a", "Succeeded"), pod("b", "Failed"), pod("r")], None, ["a", "b"], ["a"], ["b"]),
    (job(), [pod("r"), pod("d", deleting=True)], jt.FAILURE, ["d", "r"], [], ["r", "d"]),   # failing: all count
    (job(), [pod("r"), pod("s", "Succeeded")], jt.SUCCESS, ["r", "s"], ["s"], []),           # success: not failed
    (job(deleting=True), [pod("r"), pod("s", "Succeeded")], None, ["r", "s"], ["s"], []),    # Job deleted
    (job(uncounted={"succeeded": ["a"]}), [pod("a", "Succeeded")], None, ["a"], ["a"], []),  # not recorded twice
    (job(), [pod("a", "Succeeded", tracked=False), pod("r")], None, [], [], []),
    (job({"podFailurePolicy": IGNORE_DISRUPTION}), [pod("i", "Failed", conditions=["DisruptionTarget"])], None,
     ["i"], [], []),                                                                          # ignored: released
    (job(INDEXED), [pod("a", "Succeeded", index=1)], None, ["a"], [], []),                   # into completedIndexes
], ids=["finished", "failing", "succeeding", "job-deleted", "recorded", "untracked", "ignored", "indexed"])
def test_plan_tracking(j, pods, finished, remove, unc_s, unc_f):
    got = jt.plan_tracking(j, pods, finished=finished)
    assert names(got.remove) == remove
    assert (got.uncounted_succeeded, got.uncounted_failed) == (unc_s, unc_f)


def test_plan_tracking_indexed_and_cap():
    j = job(INDEXED)
    got = jt.plan_tracking(j, [pod("a", "Succeeded", index=1), pod("b", "Succeeded", index=0)], prev_succeeded_indexes={0})
    assert got.new_succeeded_indexes == {1} and names(got.remove) == ["a", "b"]
    got = jt.plan_tracking(job(), [pod(f"p{i}", "Failed") for i in range(5)], max_uncounted=2)
    assert got.reached_max and got.uncounted_failed == ["p0", "p1"] and names(got.remove) == ["p0", "p1"]


def test_delayed_deletion_keeps_the_last_failed_pod_of_a_waiting_index():
    spec = {**INDEXED, "backoffLimitPerIndex": 2}
    j = job(spec)
    first = pod("f0", "Failed", index=0, failures=0, exit_code=1, finished="2026-12-07T00:00:01Z")
    second = pod("f1", "Failed", index=0, failures=1, exit_code=1, finished="2026-12-07T00:00:02Z")
    other = pod("g", "Failed", index=1, failures=0, exit_code=1)
    running = pod("r", index=1)
    delayed = jt.delayed_deletion_per_index(j, [first, second, other, running], succeeded=set(), failed=set())
    assert {i: p["metadata"]["uid"] for i, p in delayed.items()} == {0: "f1"}  # index 1 has its replacement
    got = jt.plan_tracking(j, [first, second, other, running], delayed=delayed)
    assert names(got.remove) == ["f0", "g"] and got.uncounted_failed == ["f0", "g"]


@pytest.mark.parametrize("status,with_finalizer,changed,after", [
    ({"succeeded": 1, "uncountedTerminatedPods": {"succeeded": ["a", "b"], "failed": ["c"]}}, {"b"}, True,
     {"succeeded": 2, "failed": 1, "uncountedTerminatedPods": {"succeeded": ["b"]}}),
    ({"uncountedTerminatedPods": {"failed": ["c"]}}, set(), True,
     {"succeeded": 0, "failed": 1, "uncountedTerminatedPods": {}}),
    ({"succeeded": 3, "uncountedTerminatedPods": {"succeeded": ["a"]}}, {"a"}, False,
     {"succeeded": 3, "uncountedTerminatedPods": {"succeeded": ["a"]}}),
    ({"succeeded": 3}, set(), False, {"succeeded": 3}),
], ids=["partial", "all", "none-yet", "nothing-recorded"])
def test_clean_uncounted(status, with_finalizer, changed, after):
    assert jt.clean_uncounted(status, with_finalizer) is changed
    assert status == after


# -- whole sequences of syncs ---------------------------------------------------------------------

class Cluster:
    """The Job's status and its pods as the apiserver holds them; ``sync`` runs the three
    steps of ``JobController._track`` and may stop ("crash") after one of them."""

    def __init__(self, j, pods):
        self.job = j
        self.pods = {p["metadata"]["uid"]: p for p in pods}

    def sync(self, crash_after=None, finished=None):
        pods = list(self.pods.values())
        status = copy.deepcopy(self.job["status"])
        with_f = {p["metadata"]["uid"] for p in pods if jt.has_tracking_finalizer(p)}
        jt.clean_uncounted(status, with_f)
        counts = jobc.count_pods(self.job, pods)
        got = jt.plan_tracking({**self.job, "status": status}, pods, finished=finished,
                               prev_succeeded_indexes=counts.prev_succeeded_indexes)
        status["uncountedTerminatedPods"] = jt.uncounted_status(got.uncounted_succeeded, got.uncounted_failed)
        if counts.indexed:
            done = counts.prev_succeeded_indexes | got.new_succeeded_indexes
            status["completedIndexes"] = jobc.compress_indexes(done)
            status["succeeded"] = len(done)
        self.job["status"] = status                       # write 1: the UIDs recorded
        if crash_after == "record":
            return
        for p in got.remove:                               # the finalizers removed
            self.release(p["metadata"]["uid"])
        if crash_after == "remove":
            return
        status = copy.deepcopy(status)
        jt.clean_uncounted(status, with_f - {p["metadata"]["uid"] for p in got.remove})
        self.job["status"] = status                       # write 2: into the counters

    def release(self, uid):
        """The finalizer goes; a pod being deleted then leaves storage."""
        p = self.pods.get(uid)
        if p is None:
            return
        p["metadata"]["finalizers"] = [f for f in p["metadata"].get("finalizers") or [] if f != FIN]
        if p["metadata"].get("deletionTimestamp"):
            del self.pods[uid]

    def delete(self, uid):
        """``kubectl delete pod``: with the finalizer it stays, marked for deletion."""
        p = self.pods[uid]
        if jt.has_tracking_finalizer(p):
            p["metadata"]["deletionTimestamp"] = "2026-12-07T00:00:30Z"
        else:
            del self.pods[uid]

    def counters(self):
        st = self.job["status"]
        return st.get("succeeded", 0), st.get("failed", 0), st.get("uncountedTerminatedPods")


PODS = [pod("s", "Succeeded"), pod("f", "Failed"), pod("d", deleting=True), pod("r")]


@pytest.mark.parametrize("crash_after", [None, "record", "remove"], ids=["no-crash", "after-record", "after-remove"])
def test_restart_between_steps_counts_each_pod_once(crash_after):
    c = Cluster(job(), copy.deepcopy(PODS))
    c.sync(crash_after=crash_after)
    if crash_after == "record":
        assert c.job["status"]["uncountedTerminatedPods"] == {"succeeded": ["s"], "failed": ["f", "d"]}
    c.sync()   # the restarted controller
    c.sync()   # and again: nothing changes
    assert c.counters() == (1, 2, {})
    assert sorted(c.pods) == ["f", "r", "s"]   # the deleted one left storage once counted
    assert [u for u, p in c.pods.items() if jt.has_tracking_finalizer(p)] == ["r"]


@pytest.mark.parametrize("when", ["before-seen", "after-record", "after-counted"])
def test_succeeded_pod_deleted_right_after_it_finished(when):
    c = Cluster(job(), [pod("s"), pod("r")])
    c.pods["s"]["status"]["phase"] = "Succeeded"
    if when == "before-seen":
        c.delete("s")
        assert "s" in c.pods, "the finalizer keeps it until it is counted"
    elif when == "after-record":
        c.sync(crash_after="record")
        c.delete("s")
    else:
        c.sync()
        c.delete("s")
    c.sync()
    c.sync()
    assert c.counters() == (1, 0, {}) and "s" not in c.pods


def test_recorded_pod_whose_finalizer_someone_else_removed_is_counted_once():
    c = Cluster(job(), [pod("s", "Succeeded")])
    c.sync(crash_after="record")
    c.delete("s")
    c.release("s")       # e.g. podgc or a user stripped the finalizer: the pod is gone
    c.sync()
    c.sync()
    assert c.counters() == (1, 0, {})


def test_indexed_successes_go_to_completed_indexes():
    c = Cluster(job(INDEXED), [pod("a", "Succeeded", index=0), pod("b", "Succeeded", index=0),
                               pod("c", "Succeeded", index=2)])
    c.sync(crash_after="record")
    assert c.job["status"]["completedIndexes"] == "0,2" and c.job["status"]["succeeded"] == 2
    c.delete("a")
    c.sync()
    assert c.job["status"]["completedIndexes"] == "0,2" and c.job["status"]["succeeded"] == 2
    assert not any(jt.has_tracking_finalizer(p) for p in c.pods.values()) and "a" not in c.pods


def test_finalizer_expectations():
    e = jt.FinalizerExpectations()
    e.expect_removed("ns/j", ["a", "b"])
    e.observed("ns/j", "a")
    assert e.expected("ns/j") == {"b"}
    e.observed("ns/j", "b")
    assert e.expected("ns/j") == frozenset()
    e.expect_removed("ns/j", ["c"])
    e.delete("ns/j")
    assert e.expected("ns/j") == frozenset()


# -- podgc: pods whose Job is gone -------------------------------------------------------------------

@pytest.mark.parametrize("p,jobs,gone", [
    (pod("a"), {"ns/j": "j-uid"}, False),                     # its Job exists
    (pod("a"), {}, True),                                     # deleted
    (pod("a"), {"ns/j": "other-uid"}, True),                  # replaced by a Job of the same name
    (pod("a", owner=None), {}, True),                         # orphaned (--cascade=orphan)
    (pod("a", tracked=False), {}, False),                     # nothing to remove
], ids=["job-exists", "job-deleted", "job-recreated", "no-controller", "no-finalizer"])
def test_podgc_job_gone(p, jobs, gone):
    assert job_gone(p, jobs) is gone


def test_podgc_job_gone_leaves_other_controllers_pods():
    p = pod("a")
    p["metadata"]["ownerReferences"][0].update(kind="ReplicaSet", apiVersion="apps/v1")
    assert not job_gone(p, {})
    got = podgc_plan([p, pod("b")], set(), {}, now=0, quarantine=40, threshold=0, jobs={})
    assert names(got.tracking_orphans) == ["b"]
    assert podgc_plan([pod("b")], set(), {}, now=0, quarantine=40, threshold=0).tracking_orphans == []
