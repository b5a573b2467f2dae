"""Pure controller logic: rolling-update math, proportional scaling, pod ranking for
deletion, template hashing, expectations, daemon node eligibility, endpoints subsets, jobs."""

from __future__ import annotations

import pytest

from controlplane.client.rest import ApiStatusError
from controlplane.controllers import controllerutil as cu
from controlplane.controllers import deploymentutil as du
from controlplane.controllers import endpoints as ep
from controlplane.controllers import job as jobc
from controlplane.controllers import podutil as pu
from controlplane.controllers import replicasetutil as rsc
from controlplane.controllers import statefulset as ssc


def deploy(replicas=3, surge=None, unavail=None, strategy="RollingUpdate"):
    ru = {}
    if surge is not None:
        ru["maxSurge"] = surge
    if unavail is not None:
        ru["maxUnavailable"] = unavail
    st = {"type": strategy}
    if strategy == "RollingUpdate":
        st["rollingUpdate"] = ru
    return {"metadata": {"name": "d", "generation": 1}, "spec": {"replicas": replicas, "strategy": st}}


def rs(name, spec, status_replicas=None, available=None, created="2026-01-01T00:00:00Z", rev=None):
    ann = {du.REVISION: str(rev)} if rev is not None else {}
    return {"metadata": {"name": name, "creationTimestamp": created, "annotations": ann},
            "spec": {"replicas": spec},
            "status": {"replicas": spec if status_replicas is None else status_replicas,
                       "availableReplicas": spec if available is None else available}}


@pytest.mark.parametrize("surge,unavail,replicas,expected", [
    (None, None, 4, (1, 1)),
    (None, None, 10, (3, 2)),
    ("0%", "0%", 3, (0, 1)),
    (0, 0, 3, (0, 1)),
    (2, 0, 3, (2, 0)),
    ("50%", "50%", 5, (3, 2)),
    (1, "100%", 3, (1, 3)),
], ids=["defaults-4", "defaults-10", "zero-pct", "zero-int", "surge-only", "half", "all-unavailable"])
def test_fenceposts(surge, unavail, replicas, expected):
    assert du.resolve_fenceposts(deploy(replicas, surge, unavail)) == expected


@pytest.mark.parametrize("d,all_rs,new_spec,expected", [
    # fresh rollout of 5 with surge 2: old 5 -> new may go to 2
    (deploy(5, 2, 0), [rs("old", 5)], 0, 2),
    # already at the surge ceiling: no change
    (deploy(5, 2, 0), [rs("old", 5)], 2, 2),
    # old scaled down to 3: new may grow to 4
    (deploy(5, 2, 0), [rs("old", 3)], 2, 4),
    # old spec lowered but its pods not yet gone (status 5): wait
    (deploy(5, 2, 0), [rs("old", 3, status_replicas=5)], 2, 2),
    # never beyond replicas
    (deploy(3, 5, 0), [], 0, 3),
    (deploy(3, 1, 1, strategy="Recreate"), [rs("old", 3)], 0, 3),
], ids=["start", "ceiling", "grow", "wait-old-pods", "cap-replicas", "recreate"])
def test_new_rs_new_replicas(d, all_rs, new_spec, expected):
    new = rs("new", new_spec)
    assert du.new_rs_new_replicas(d, all_rs + [new], new) == expected


def test_rolling_update_never_breaks_fenceposts():
    """Simulate a rollout with instant pods; at every step the totals respect the bounds."""
    for replicas, surge, unavail in [(5, 2, 0), (5, 0, 1), (10, "25%", "25%"), (3, 1, 1), (1, 1, 0)]:
        d = deploy(replicas, surge, unavail)
        s, u = du.resolve_fenceposts(d)
        old, new = rs("old", replicas, created="2026-01-01T00:00:00Z"), rs("new", 0, created="2026-01-02T00:00:00Z")
        for _ in range(100):
            all_rs = [new, old]
            n = du.new_rs_new_replicas(d, all_rs, new)
            new["spec"]["replicas"] = n
            new["status"] = {"replicas": n, "availableReplicas": n}
            assert n + old["spec"]["replicas"] <= replicas + s
            budget = du.old_scale_down_budget(d, all_rs, new)
            if budget > 0:
                for r, to in du.cleanup_unhealthy([old], budget) or du.scale_down_available(d, all_rs, [old]):
                    r["spec"]["replicas"] = to
                    r["status"] = {"replicas": to, "availableReplicas": to}
            avail = new["status"]["availableReplicas"] + old["status"]["availableReplicas"]
            assert avail >= replicas - u
            if n == replicas and old["spec"]["replicas"] == 0:
                break
        else:
            pytest.fail(f"rollout did not finish for {replicas}/{surge}/{unavail}")


@pytest.mark.parametrize("replicas,sizes,expected", [
    (10, {"new": 3, "old": 5}, {"new": 5, "old": 7}),
    (4, {"new": 4, "old": 4}, {"new": 3, "old": 3}),
    (8, {"a": 4}, {"a": 10}),
], ids=["grow", "shrink", "single"])
def test_proportional_scale(replicas, sizes, expected):
    d = deploy(replicas, 2, 0)
    active = [rs(n, v) for n, v in sizes.items()]
    new = next((r for r in active if r["metadata"]["name"] == "new"), None)
    got = du.proportional_scale(d, active, new)
    assert got == expected
    assert sum(got.values()) == replicas + 2


def pod(name, node=None, phase="Running", ready=True, created="2026-01-01T00:00:00Z", ready_at="2026-01-01T00:00:10Z",
        restarts=0, labels=None, annotations=None):
    p = {"metadata": {"name": name, "namespace": "ns", "uid": f"u-{name}", "creationTimestamp": created,
                      "labels": labels or {}, "annotations": annotations or {}},
         "spec": {"containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}]},
         "status": {"phase": phase, "podIP": f"10.0.0.{abs(hash(name)) % 250}",
                    "containerStatuses": [{"restartCount": restarts}],
                    "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                    "lastTransitionTime": ready_at}]}}
    if node:
        p["spec"]["nodeName"] = node
    return p


@pytest.mark.parametrize("pods,first", [
    ([pod("sched", node="n1"), pod("unsched")], "unsched"),
    ([pod("run", node="n1"), pod("pend", node="n1", phase="Pending")], "pend"),
    ([pod("unk", node="n1", phase="Unknown"), pod("pend", node="n1", phase="Pending")], "pend"),
    ([pod("ready", node="n1"), pod("notready", node="n1", ready=False)], "notready"),
    ([pod("old", node="n1", ready_at="2026-01-01T00:00:00Z"), pod("recent", node="n2", ready_at="2026-01-02T00:00:00Z")], "recent"),
    ([pod("calm", node="n1"), pod("crashy", node="n2", restarts=5)], "crashy"),
    ([pod("older", node="n1", created="2026-01-01T00:00:00Z"), pod("newer", node="n2", created="2026-01-03T00:00:00Z")], "newer"),
    ([pod("alone", node="n1"), pod("crowd1", node="n2"), pod("crowd2", node="n2")], "crowd1"),
    ([pod("dear", node="n1", annotations={pu.DELETION_COST: "100"}), pod("cheap", node="n2", annotations={pu.DELETION_COST: "-5"})], "cheap"),
], ids=["unscheduled-first", "pending-first", "pending-before-unknown", "not-ready-first", "ready-recently-first",
        "restarts-first", "newer-first", "colocated-first", "deletion-cost"])
def test_deletion_ranking(pods, first):
    assert pu.rank_for_deletion(pods)[0]["metadata"]["name"] == first


def test_template_hash_stable_and_sensitive():
    t = {"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"name": "c", "image": "x:1"}]}}
    h = cu.compute_hash(t)
    assert h == cu.compute_hash({"spec": {"containers": [{"image": "x:1", "name": "c"}]}, "metadata": {"labels": {"app": "a"}}})
    assert h != cu.compute_hash({**t, "spec": {"containers": [{"name": "c", "image": "x:2"}]}})
    assert h != cu.compute_hash(t, collision_count=1)
    assert all(ch in cu.SAFE_ALPHABET for ch in h)
    with_hash = {"metadata": {"labels": {"app": "a", "pod-template-hash": h}}, "spec": t["spec"]}
    assert cu.equal_ignore_hash(with_hash, t)


def test_expectations():
    now = [0.0]
    e = cu.Expectations(ttl=300, clock=lambda: now[0])
    assert e.satisfied("k")
    e.expect_creations("k", 2)
    assert not e.satisfied("k")
    e.creation_observed("k")
    assert not e.satisfied("k")
    e.creation_observed("k")
    assert e.satisfied("k")
    e.expect_deletions("k", {"a", "b"})
    e.deletion_observed("k", "a")
    e.deletion_observed("k", "a")
    assert not e.satisfied("k")
    now[0] = 301
    assert e.satisfied("k"), "expectations expire"


def test_replicaset_status():
    r = {"metadata": {"generation": 4}, "spec": {"template": {"metadata": {"labels": {"app": "a", "t": "1"}}}}}
    pods = [pod("a", labels={"app": "a", "t": "1"}), pod("b", ready=False, labels={"app": "a"})]
    st = rsc.compute_status(r, pods, now=1e10)
    assert st == {"replicas": 2, "fullyLabeledReplicas": 1, "readyReplicas": 1, "availableReplicas": 1,
                  "observedGeneration": 4}


def test_endpoints_subsets():
    svc = {"spec": {"selector": {"app": "a"}, "ports": [{"name": "web", "port": 80, "targetPort": "http"},
                                                         {"name": "raw", "port": 81, "targetPort": 9000}]}}
    a, b = pod("a", node="n1"), pod("b", node="n1", ready=False)
    c = pod("c")
    c["spec"]["containers"][0]["ports"] = []
    subsets = ep.build_subsets(svc, [a, b, c])
    assert len(subsets) == 2
    full = next(s for s in subsets if len(s["ports"]) == 2)
    assert {x["targetRef"]["name"] for x in full["addresses"]} == {"a"}
    assert {x["targetRef"]["name"] for x in full["notReadyAddresses"]} == {"b"}
    assert {p["port"] for p in full["ports"]} == {8080, 9000}
    only_raw = next(s for s in subsets if len(s["ports"]) == 1)
    assert only_raw["ports"][0]["port"] == 9000


@pytest.mark.parametrize("spec,succeeded,expected", [
    ({"completions": 5, "parallelism": 2}, 0, 2),
    ({"completions": 5, "parallelism": 2}, 4, 1),
    ({"completions": 5, "parallelism": 2}, 5, 0),
    ({"parallelism": 3}, 0, 3),
    ({"parallelism": 3}, 1, 0),
    ({"completions": 2}, 0, 1),
], ids=["start", "last", "done", "work-queue", "work-queue-done", "default-parallelism"])
def test_job_wanted_active(spec, succeeded, expected):
    assert jobc.wanted_active({"spec": spec}, succeeded) == expected


@pytest.mark.parametrize("pod_name,expected", [("web-0", 0), ("web-12", 12), ("web-x", None), ("webb-1", None), ("web-1-2", None)])
def test_statefulset_ordinal(pod_name, expected):
    assert ssc.ordinal_of("web", pod_name) == expected


@pytest.mark.parametrize("ordinal,strategy,current_replicas,expected", [
    (0, {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}, 0, True),
    (1, {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}, 3, True),
    (2, {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}, 3, False),
    (0, {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}, 3, False),
    (0, {"type": "RollingUpdate", "rollingUpdate": {}}, 3, True),
    (3, {"type": "RollingUpdate", "rollingUpdate": {}}, 3, False),
    (1, {"type": "RollingUpdate"}, 2, True),
    (2, {"type": "RollingUpdate"}, 2, False),
    (0, {"type": "OnDelete"}, 3, False),
    (0, {}, 1, True),
], ids=["below-partition", "below-partition-2", "at-partition", "partition-0", "partition-unset-below-current",
        "partition-unset-at-current",
        "no-rollingUpdate-below-current", "no-rollingUpdate-at-current", "ondelete", "default-type"])
def test_statefulset_at_current_revision(ordinal, strategy, current_replicas, expected):
    """``newVersionedStatefulSetPod``: which ordinals are re-created at the current revision."""
    assert ssc.at_current_revision(ordinal, strategy, current_replicas) is expected


@pytest.mark.parametrize("revision,expected", [
    ({"data": cu.revision_data({"metadata": {"labels": {"a": "1"}}, "spec": {"containers": []}})},
     {"metadata": {"labels": {"a": "1"}}, "spec": {"containers": []}}),
    ({"data": {}}, None),
    ({}, None),
    ({"data": {"spec": {"template": "x"}}}, None),
], ids=["replace-patch", "no-template", "no-data", "not-a-template"])
def test_revision_template(revision, expected):
    assert cu.revision_template(revision) == expected


# -- Indexed Jobs ---------------------------------------------------------------------------------

def ipod(name, index, phase="Running", deleting=False, node="n1", ready=True):
    md = {"name": name, "uid": name, "annotations": {} if index is None else {jobc.INDEX_KEY: str(index)}}
    if deleting:
        md["deletionTimestamp"] = "2026-12-07T00:00:00Z"
    return {"metadata": md, "spec": {"nodeName": node},
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


@pytest.mark.parametrize("indexes,text", [
    (set(), ""), ({3}, "3"), ({0, 1}, "0,1"), ({0, 1, 2}, "0-2"), ({0, 1, 2, 4, 6, 7}, "0-2,4,6,7"),
    ({5, 9, 10, 11, 12, 20}, "5,9-12,20"),
])
def test_compress_indexes(indexes, text):
    assert jobc.compress_indexes(indexes) == text


@pytest.mark.parametrize("completions,pods,want,succeeded,removed,created", [
    (3, [], 2, set(), [], [0, 1]),                                        # lowest indexes first
    (3, [ipod("a", 0, "Succeeded")], 2, {0}, [], [1, 2]),
    (3, [ipod("a", 0, "Succeeded"), ipod("b", 1)], 2, {0}, [], [2]),       # 1 runs: only 2 is new
    (3, [ipod("a", 1, "Failed")], 1, set(), [], [0]),                      # a failed index runs again
    (3, [ipod("a", 0, "Succeeded"), ipod("b", 0)], 2, {0}, ["b"], [1, 2]),  # index already done
    (3, [ipod("a", 7), ipod("b", None)], 1, set(), ["a", "b"], [0]),      # out of range, no index
    (3, [ipod("a", 1, "Pending", node="", ready=False), ipod("b", 1)], 1, set(), ["a"], []),  # duplicate
    (2, [ipod("a", 0, deleting=True)], 2, set(), [], [0, 1]),  # terminating: replaced at once (TerminatingOrFailed)
])
def test_indexed_plan(completions, pods, want, succeeded, removed, created):
    got_succeeded, remove, create = jobc.indexed_plan(completions, pods, want)
    assert got_succeeded == succeeded
    assert sorted(p["metadata"]["name"] for p in remove) == removed
    assert create == created


def test_indexed_template():
    t = {"metadata": {"labels": {"app": "x"}},
         "spec": {"containers": [{"name": "c", "image": "i"}, {"name": "d", "image": "i",
                                                               "env": [{"name": "JOB_COMPLETION_INDEX", "value": "9"}]}],
                  "initContainers": [{"name": "i", "image": "i"}]}}
    out, gen = jobc.indexed_template(t, "work", 4)
    assert gen == "work-4-" and out["spec"]["hostname"] == "work-4"
    assert out["metadata"]["annotations"][jobc.INDEX_KEY] == "4" and out["metadata"]["labels"][jobc.INDEX_KEY] == "4"
    ref = {"name": "JOB_COMPLETION_INDEX",
           "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}}
    assert out["spec"]["containers"][0]["env"] == [ref] and out["spec"]["initContainers"][0]["env"] == [ref]
    assert out["spec"]["containers"][1]["env"] == [{"name": "JOB_COMPLETION_INDEX", "value": "9"}]  # kept
    assert "env" not in t["spec"]["containers"][0], "the Job's template is not changed"


# -- controller history (ControllerRevisions) -----------------------------------------------------

def crev(name, number, image):
    return {"metadata": {"name": name, "namespace": "d"}, "revision": number,
            "data": cu.revision_data({"spec": {"containers": [{"name": "c", "image": image}]}})}


def data_for(image):
    return cu.revision_data({"spec": {"containers": [{"name": "c", "image": image}]}})


@pytest.mark.parametrize("revisions,image,action,which,nxt", [
    ([], "a", "create", None, 1),
    ([crev("s-1", 1, "a")], "a", "keep", "s-1", 2),
    ([crev("s-1", 1, "a")], "b", "create", None, 2),
    ([crev("s-1", 1, "a"), crev("s-2", 2, "b")], "a", "bump", "s-1", 3),   # a rollback
    ([crev("s-2", 2, "b"), crev("s-1", 1, "a")], "b", "keep", "s-2", 3),   # order of the list does not matter
])
def test_history_plan(revisions, image, action, which, nxt):
    got_action, found, got_next = cu.history_plan(revisions, data_for(image))
    assert (got_action, found["metadata"]["name"] if found else None, got_next) == (action, which, nxt)


@pytest.mark.parametrize("numbers,live,limit,pruned", [
    ([1, 2, 3], {"s-3"}, 10, []),
    ([1, 2, 3, 4], {"s-4"}, 2, ["s-1"]),
    ([1, 2, 3, 4], {"s-4", "s-1"}, 1, ["s-2"]),      # a live revision is never pruned
    ([1, 2, 3], {"s-3"}, 0, ["s-1", "s-2"]),
])
def test_history_to_prune(numbers, live, limit, pruned):
    revs = [crev(f"s-{n}", n, str(n)) for n in numbers]
    assert [r["metadata"]["name"] for r in cu.history_to_prune(revs, live, limit)] == pruned


def test_revision_data_and_object():
    owner = {"apiVersion": "apps/v1", "kind": "StatefulSet",
             "metadata": {"name": "db", "namespace": "d", "uid": "u1",
                          "annotations": {"kubernetes.io/change-cause": "v2",
                                          "kubectl.kubernetes.io/last-applied-configuration": "{}"}},
             "spec": {"template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": []}}}}
    data = cu.revision_data(owner["spec"]["template"])
    assert data == {"spec": {"template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": []},
                                          "$patch": "replace"}}}
    assert "$patch" not in owner["spec"]["template"]
    rev = cu.new_revision(owner, "db-abc", "abc", data, 4)
    assert rev["metadata"]["labels"] == {"app": "db", "controller-revision-hash": "abc"}
    assert rev["metadata"]["annotations"] == {"kubernetes.io/change-cause": "v2"}
    assert rev["metadata"]["ownerReferences"][0]["uid"] == "u1" and rev["revision"] == 4


@pytest.mark.parametrize("err, text", [
    (ApiStatusError(403, "Forbidden", 'pods "j-x" is forbidden: exceeded quota: q'),
     'pods "j-x" is forbidden: exceeded quota: q'),
    (RuntimeError("connection reset"), "connection reset"),
])
def test_error_text_is_the_status_message(err, text):
    """Events and conditions quote an API error as Go's err.Error() does (no HTTP code prefix)."""
    assert cu.error_text(err) == text


@pytest.mark.parametrize("d_ann,rs_ann,new_rev,expected", [
    ({}, {du.REVISION: "1"}, 1, {du.REVISION: "1"}),
    ({}, {du.REVISION: "3"}, 2, {du.REVISION: "3"}),
    ({}, {}, 1, {du.REVISION: "1"}),
    ({}, {du.REVISION: "1"}, 3, {du.REVISION: "3", du.REVISION_HISTORY: "1"}),
    ({}, {du.REVISION: "3", du.REVISION_HISTORY: "1"}, 5, {du.REVISION: "5", du.REVISION_HISTORY: "1,3"}),
    ({"kubernetes.io/change-cause": "v3", du.REVISION: "9", "kubectl.kubernetes.io/last-applied-configuration": "{}"},
     {du.REVISION: "2", "kubernetes.io/change-cause": "v2"}, 2, {du.REVISION: "2", "kubernetes.io/change-cause": "v3"}),
], ids=["unchanged", "higher-kept", "first", "rollback-records-old", "rollback-appends", "deployment-annotations-win"])
def test_new_rs_annotations(d_ann, rs_ann, new_rev, expected):
    """``SetNewReplicaSetAnnotations`` on an existing new ReplicaSet."""
    assert du.new_rs_annotations(d_ann, rs_ann, new_rev) == expected


def test_new_rs_annotations_history_limit():
    rs_ann = {du.REVISION: "10", du.REVISION_HISTORY: "1,2,3"}
    got = du.new_rs_annotations({}, rs_ann, 11, limit=6)
    assert got[du.REVISION_HISTORY] == "2,3,10", "the oldest entry dropped to fit the limit"
