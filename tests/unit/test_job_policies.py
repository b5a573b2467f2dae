"""Job failure and success policies, pure: podFailurePolicy matching, per-index failure
accounting (backoffLimitPerIndex), successPolicy, the finish decision, the index interval
strings, and the apiserver's defaults and validation messages (Kubernetes 1.31-1.32 wording)."""

from __future__ import annotations

import pytest

from controlplane.apiserver.meta.names import Errors
from controlplane.apiserver.validation import batch
from controlplane.controllers import job as jobc
from controlplane.controllers import jobutil as ju
from controlplane.machinery import jobindexes as ji
from tests.unit.apiserver_kinds import apply_defaults

NOW = 1_800_000_000.0


def pod(name="p", phase="Failed", *, exit_codes=None, init_exit_codes=None, conditions=(), index=None,
        failures=None, ignored=None, deleting=False, finished=None, tracked=True):
    """A pod of namespace ns; ``exit_codes`` maps container name -> exit code (None: running);
    ``tracked``: it carries the Job's tracking finalizer (not counted yet), as the controller
    creates them."""
    ann = {}
    if index is not None:
        ann[ju.INDEX_KEY] = str(index)
    if failures is not None:
        ann[ju.FAILURE_COUNT_KEY] = str(failures)
    if ignored is not None:
        ann[ju.IGNORED_FAILURE_COUNT_KEY] = str(ignored)

    def statuses(codes):
        out = []
        for n, code in (codes or {}).items():
            state = {"running": {}} if code is None else \
                {"terminated": {"exitCode": code, **({"finishedAt": finished} if finished else {})}}
            out.append({"name": n, "state": state})
        return out
    md = {"name": name, "namespace": "ns", "uid": name, "annotations": ann,
          "creationTimestamp": "2026-12-07T00:00:00Z"}
    if deleting:
        md["deletionTimestamp"] = "2026-12-07T00:00:01Z"
    if tracked:
        md["finalizers"] = ["batch.kubernetes.io/job-tracking"]
    return {"metadata": md, "spec": {"nodeName": "n1"},
            "status": {"phase": phase, "containerStatuses": statuses(exit_codes),
                       "initContainerStatuses": statuses(init_exit_codes),
                       "conditions": [{"type": t, "status": s} for t, s in conditions]}}


def exit_rule(action, op, values, container=None):
    req = {"operator": op, "values": values}
    if container:
        req["containerName"] = container
    return {"action": action, "onExitCodes": req}


def cond_rule(action, ctype, status="True"):
    return {"action": action, "onPodConditions": [{"type": ctype, "status": status}]}


# -- podFailurePolicy matching ------------------------------------------------------------------

FAIL_42 = exit_rule("FailJob", "In", [42])
IGNORE_DISRUPTION = cond_rule("Ignore", "DisruptionTarget")


@pytest.mark.parametrize("rules,p,expected", [
    ([], pod(exit_codes={"main": 1}), (None, True, None)),
    ([FAIL_42], pod(exit_codes={"main": 42}),
     ("Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 0", True, "FailJob")),
    ([FAIL_42], pod(exit_codes={"main": 1}), (None, True, None)),
    ([IGNORE_DISRUPTION, FAIL_42], pod(exit_codes={"main": 42}, conditions=[("DisruptionTarget", "True")]),
     (None, False, "Ignore")),                                                         # first rule wins
    ([FAIL_42, IGNORE_DISRUPTION], pod(exit_codes={"main": 42}, conditions=[("DisruptionTarget", "True")]),
     ("Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 0", True, "FailJob")),
    ([IGNORE_DISRUPTION], pod(conditions=[("DisruptionTarget", "False")]), (None, True, None)),  # status differs
    ([cond_rule("FailJob", "DisruptionTarget")], pod(conditions=[("DisruptionTarget", "True")]),
     ("Pod ns/p has condition DisruptionTarget matching FailJob rule at index 0", True, "FailJob")),
    ([exit_rule("Count", "NotIn", [1, 2])], pod(exit_codes={"main": 3}), (None, True, "Count")),
    ([exit_rule("Ignore", "NotIn", [1, 2])], pod(exit_codes={"main": 2}), (None, True, None)),  # in the list
    ([exit_rule("Ignore", "NotIn", [1])], pod(exit_codes={"main": 0}), (None, True, None)),  # 0 never matches
    ([exit_rule("FailJob", "In", [5], container="side")], pod(exit_codes={"main": 5, "side": 1}),
     (None, True, None)),                                                              # other container
    ([exit_rule("FailJob", "In", [5], container="side")], pod(exit_codes={"main": 1, "side": 5}),
     ("Container side for pod ns/p failed with exit code 5 matching FailJob rule at index 0", True, "FailJob")),
    ([exit_rule("FailIndex", "In", [3])], pod(exit_codes={"main": None}, init_exit_codes={"init": 3}),
     (None, True, "FailIndex")),                                                      # init containers too
    ([exit_rule("FailJob", "In", [3])], pod(exit_codes={"main": None}), (None, True, None)),  # still running
], ids=["no-rules", "failjob-exit", "no-match", "ignore-first", "failjob-first", "cond-status", "failjob-cond",
        "count-notin", "notin-listed", "zero", "named-other", "named", "init-failindex", "running"])
def test_match_pod_failure_policy(rules, p, expected):
    assert ju.match_pod_failure_policy({"rules": rules}, p) == expected


def test_fail_job_message_only_failed_pods():
    policy = {"rules": [FAIL_42]}
    running = pod("a", "Running", exit_codes={"main": 42})  # a restarted container's last state, say
    assert ju.fail_job_message(policy, [running]) is None
    assert ju.fail_job_message(policy, [running, pod("b", exit_codes={"main": 42})]).startswith("Container main for pod ns/b")
    assert ju.fail_job_message(None, [pod("b", exit_codes={"main": 42})]) is None


# -- per-index failure accounting ---------------------------------------------------------------

@pytest.mark.parametrize("policy,replaced,expected", [
    (None, None, (0, 0)),
    (None, pod(index=0, failures=0), (1, 0)),
    (None, pod(index=0, failures=2, ignored=1), (3, 1)),
    ({"rules": [IGNORE_DISRUPTION]}, pod(index=0, failures=1, conditions=[("DisruptionTarget", "True")]), (1, 1)),
    ({"rules": [IGNORE_DISRUPTION]}, pod(index=0, failures=1, exit_codes={"main": 1}), (2, 0)),
    (None, pod(index=0, failures="x"), (1, 0)),                  # a corrupt annotation counts as 0
])
def test_new_index_failure_counts(policy, replaced, expected):
    assert ju.new_index_failure_counts(policy, replaced) == expected


@pytest.mark.parametrize("spec,p,failed", [
    ({"backoffLimitPerIndex": 1}, pod(index=0, failures=0), False),
    ({"backoffLimitPerIndex": 1}, pod(index=0, failures=1), True),
    ({"backoffLimitPerIndex": 0}, pod(index=0), True),            # no annotation: first attempt
    ({"backoffLimitPerIndex": 1}, pod("r", "Running", index=0, failures=5), False),
    ({"backoffLimitPerIndex": 5, "podFailurePolicy": {"rules": [exit_rule("FailIndex", "In", [7])]}},
     pod(index=0, failures=0, exit_codes={"main": 7}), True),
    ({"backoffLimitPerIndex": 0, "podFailurePolicy": {"rules": [IGNORE_DISRUPTION]}},
     pod(index=0, conditions=[("DisruptionTarget", "True")]), False),  # ignored: never fails the index
])
def test_is_index_failed(spec, p, failed):
    assert ju.is_index_failed(spec, p) is failed


def test_failed_indexes_merge_status_and_pods():
    spec = {"completions": 6, "backoffLimitPerIndex": 1}
    pods = [pod("a", index=2, failures=1), pod("b", index=3, failures=0), pod("c", index=9, failures=1)]
    assert ju.failed_indexes(spec, "0,4-5", pods) == {0, 2, 4, 5}
    assert ju.failed_indexes(spec, None, []) == set()


def test_last_failed_per_index_is_the_latest_attempt():
    first = pod("first", index=1, failures=0)
    second = pod("second", index=1, failures=1)
    ignored = pod("ign", index=1, failures=1, ignored=1)
    other = pod("o", index=0, failures=0, exit_codes={"main": 1}, finished="2026-12-07T00:00:09Z")
    late = pod("late", index=0, failures=0, exit_codes={"main": 1}, finished="2026-12-07T00:00:10Z")
    got = ju.last_failed_per_index([first, ignored, second, pod("run", "Running", index=1, failures=4), other, late], 3)
    assert got[1]["metadata"]["name"] == "ign" and got[0]["metadata"]["name"] == "late"


# -- successPolicy -----------------------------------------------------------------------------

@pytest.mark.parametrize("rules,succeeded,expected", [
    ([{"succeededIndexes": "0"}], {0}, ("Matched rules at index 0", True)),
    ([{"succeededIndexes": "0"}], {1, 2}, ("", False)),
    ([{"succeededIndexes": "0-2", "succeededCount": 2}], {0, 2, 4}, ("Matched rules at index 0", True)),
    ([{"succeededIndexes": "0-2", "succeededCount": 2}], {2, 3, 4}, ("", False)),
    ([{"succeededCount": 3}], {5, 7}, ("", False)),
    ([{"succeededIndexes": "1"}, {"succeededCount": 2}], {5, 7}, ("Matched rules at index 1", True)),
    ([{"succeededIndexes": "1,3-5,7"}], {1, 3, 4, 5, 7, 9}, ("Matched rules at index 0", True)),
    ([{"succeededIndexes": "1,3-5,7"}], {1, 3, 5, 7}, ("", False)),
    ([{"succeededIndexes": "x"}], {0}, ("", False)),                 # unparsable rule: skipped
    ([{"succeededCount": 1}], set(), ("", False)),                   # nothing succeeded yet
])
def test_match_success_policy(rules, succeeded, expected):
    assert ju.match_success_policy({"rules": rules}, 10, succeeded) == expected


# -- index intervals ---------------------------------------------------------------------------

@pytest.mark.parametrize("text,completions,intervals", [
    ("", 5, []), ("0-2,4", 5, [(0, 2), (4, 4)]), ("1,2,3", 5, [(1, 3)]), ("0-9", 5, [(0, 4)]),
    ("1,x,3", 5, [(1, 1), (3, 3)]), ("2,7,8", 5, [(2, 2)]),
])
def test_parse_indexes(text, completions, intervals):
    assert ji.parse_indexes(text, completions) == intervals


@pytest.mark.parametrize("text,total,error", [
    ("", 0, None), ("0-2,4", 4, None), ("1,3-5", 4, None),
    ("1-2-3", 0, "the fragment \"1-2-3\" violates the requirement that an index interval can have at most two parts "
                 "separated by '-'"),
    ("a", 0, 'cannot convert string to integer for index: "a"'),
    ("1-b", 0, 'cannot convert string to integer for index: "b"'),
    ("10", 0, 'too large index: "10"'),
    ("3,1", 0, "non-increasing order, previous: 3, current: 1"),
    ("3-2", 0, "non-increasing order, previous: 3, current: 2"),
])
def test_validate_indexes_format(text, total, error):
    if error is None:
        assert ji.validate_indexes_format(text, 10) == total
    else:
        with pytest.raises(ji.IndexesFormatError) as e:
            ji.validate_indexes_format(text, 10)
        assert str(e.value) == error


# -- the finish decision and pod management ----------------------------------------------------

def job(spec, conditions=(), failed_indexes=None):
    status = {"startTime": "2027-01-15T08:00:00Z", "conditions": [dict(c) for c in conditions]}
    if failed_indexes is not None:
        status["failedIndexes"] = failed_indexes
    return {"metadata": {"name": "j", "namespace": "ns", "uid": "u"}, "spec": spec, "status": status}


INDEXED = {"completionMode": "Indexed", "completions": 4, "parallelism": 2}


@pytest.mark.parametrize("spec,pods,conditions,expected", [
    ({"backoffLimit": 6, "podFailurePolicy": {"rules": [FAIL_42]}}, [pod("x", exit_codes={"main": 42})], [],
     ("FailureTarget", "PodFailurePolicy",
      "Container main for pod ns/x failed with exit code 42 matching FailJob rule at index 0")),
    ({"backoffLimit": 0, "podFailurePolicy": {"rules": [IGNORE_DISRUPTION]}},
     [pod("x", conditions=[("DisruptionTarget", "True")])], [], None),          # ignored: not counted
    ({"backoffLimit": 0}, [pod("x")], [],
     ("FailureTarget", "BackoffLimitExceeded", "Job has reached the specified backoff limit")),
    ({"backoffLimit": 0}, [], [{"type": "FailureTarget", "status": "True", "reason": "R", "message": "M"}],
     ("Failed", "R", "M")),                                                     # the interim one turns terminal
    ({}, [], [{"type": "SuccessCriteriaMet", "status": "True", "reason": "SuccessPolicy", "message": "M"}],
     ("Complete", "SuccessPolicy", "M")),
    ({**INDEXED, "backoffLimitPerIndex": 0, "maxFailedIndexes": 1},
     [pod("a", index=0), pod("b", index=1)], [],
     ("FailureTarget", "MaxFailedIndexesExceeded", "Job has exceeded the specified maximal number of failed indexes")),
    ({**INDEXED, "backoffLimitPerIndex": 0},
     [pod("a", index=0), pod("b", "Succeeded", index=1), pod("c", "Succeeded", index=2), pod("d", "Succeeded", index=3)],
     [], ("FailureTarget", "FailedIndexes", "Job has failed indexes")),
    ({**INDEXED, "backoffLimitPerIndex": 0}, [pod("a", index=0), pod("b", "Succeeded", index=1)], [], None),
    ({**INDEXED, "successPolicy": {"rules": [{"succeededIndexes": "1"}]}}, [pod("b", "Succeeded", index=1)], [],
     ("SuccessCriteriaMet", "SuccessPolicy", "Matched rules at index 0")),
], ids=["failjob", "ignored", "backoff", "failure-target", "success-criteria", "max-failed-indexes",
        "failed-indexes", "index-pending", "success-policy"])
def test_finish_target(spec, pods, conditions, expected):
    j = job(spec, conditions)
    got, _ = jobc.finish_target(j, jobc.count_pods(j, pods), NOW)
    assert got == expected


def test_count_pods_ignored_and_terminating():
    spec = {"backoffLimit": 6, "podFailurePolicy": {"rules": [IGNORE_DISRUPTION]}}
    pods = [pod("a", conditions=[("DisruptionTarget", "True")]), pod("b", exit_codes={"main": 1}),
            pod("c", "Running", deleting=True), pod("d", "Running")]
    counts = jobc.count_pods(job(spec), pods)
    assert counts.failed == 1 and counts.terminating == 1 and [p["metadata"]["name"] for p in counts.active] == ["d"]
    assert counts.failed_indexes is None


@pytest.mark.parametrize("pods,want,failed,wait,removed,created", [
    ([pod("a", index=0, failures=0)], 2, set(), False, [], [0, 1]),              # a failed index runs again
    ([pod("a", index=0, failures=1)], 2, {0}, False, [], [1, 2]),               # not a failed one
    ([pod("r", "Running", index=0)], 2, {0}, False, ["r"], [1, 2]),              # its pods go
    ([pod("t", "Running", index=0, deleting=True)], 2, set(), True, [], [1]),    # Failed policy: wait
    ([pod("t", "Running", index=0, deleting=True)], 2, set(), False, [], [0, 1]),  # TerminatingOrFailed
])
def test_indexed_plan_with_failed_and_terminating(pods, want, failed, wait, removed, created):
    _, remove, create = jobc.indexed_plan(4, pods, want, failed=failed, wait_terminating=wait)
    assert sorted(p["metadata"]["name"] for p in remove) == removed and create == created


def test_indexed_template_failure_counts():
    t = {"spec": {"containers": [{"name": "c", "image": "i"}]}}
    out, _ = jobc.indexed_template(t, "w", 2, (1, 0))
    assert out["metadata"]["annotations"][ju.FAILURE_COUNT_KEY] == "1"
    assert ju.IGNORED_FAILURE_COUNT_KEY not in out["metadata"]["annotations"]
    out, _ = jobc.indexed_template(t, "w", 2, (0, 3))
    assert out["metadata"]["annotations"][ju.IGNORED_FAILURE_COUNT_KEY] == "3"
    out, _ = jobc.indexed_template(t, "w", 2)
    assert ju.FAILURE_COUNT_KEY not in out["metadata"]["annotations"]


@pytest.mark.parametrize("spec,expected", [
    ({"podReplacementPolicy": "Failed"}, True), ({"podFailurePolicy": {"rules": []}}, True),
    ({"podReplacementPolicy": "TerminatingOrFailed"}, False), ({}, False),
])
def test_only_replace_failed(spec, expected):
    assert jobc.only_replace_failed(spec) is expected


# -- apiserver defaults and validation ---------------------------------------------------------

def test_defaults_with_policies():
    base = {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}
    spec = apply_defaults({"kind": "Job", "metadata": {"name": "j", "uid": "u"},
                           "spec": {**base, "completionMode": "Indexed", "completions": 3, "backoffLimitPerIndex": 1,
                                    "podFailurePolicy": {"rules": [{"action": "Ignore",
                                                                    "onPodConditions": [{"type": "DisruptionTarget"}]}]}}},
                          ("batch", "v1", "Job"))["spec"]
    assert spec["backoffLimit"] == 2**31 - 1 and spec["podReplacementPolicy"] == "Failed"
    assert spec["podFailurePolicy"]["rules"][0]["onPodConditions"][0]["status"] == "True"
    spec = apply_defaults({"kind": "Job", "metadata": {"name": "j", "uid": "u"}, "spec": dict(base)},
                          ("batch", "v1", "Job"))["spec"]
    assert spec["backoffLimit"] == 6 and spec["podReplacementPolicy"] == "TerminatingOrFailed"


CONTAINERS = [{"name": "main", "image": "busybox"}]


def vspec(restart="Never", **extra):
    return {"selector": {"matchLabels": {"a": "b"}}, "completions": 4, "parallelism": 2,
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"restartPolicy": restart, "containers": CONTAINERS}},
            **extra}


def messages(spec):
    errs = Errors()
    batch.job_spec(spec, errs, "spec")
    return [f"{c['field']}: {c['message']}" for c in errs.causes]


PFP = "spec.podFailurePolicy.rules[0]"


@pytest.mark.parametrize("spec,expected", [
    (vspec(podFailurePolicy={"rules": [FAIL_42]}), []),
    (vspec("OnFailure", podFailurePolicy={"rules": [FAIL_42]}),
     ['spec.template.spec.restartPolicy: Invalid value: "OnFailure": only "Never" is supported when podFailurePolicy '
      'is specified']),
    (vspec(podFailurePolicy={"rules": [exit_rule("FailJob", "In", [0, 2, 1, 1])]}),
     [f"{PFP}.onExitCodes.values[0]: Invalid value: 0: must not be 0 for the In operator",
      f"{PFP}.onExitCodes.values[3]: Duplicate value: 1",
      f"{PFP}.onExitCodes.values: Invalid value: []int32{{0, 2, 1, 1}}: must be ordered"]),
    (vspec(podFailurePolicy={"rules": [exit_rule("FailJob", "NotIn", [0])]}), []),
    (vspec(podFailurePolicy={"rules": [exit_rule("FailJob", "In", [])]}),
     [f"{PFP}.onExitCodes.values: Invalid value: []int32{{}}: at least one value is required"]),
    (vspec(podFailurePolicy={"rules": [exit_rule("FailJob", "In", list(range(1, 257)))]}),
     [f"{PFP}.onExitCodes.values: Too many: 256: must have at most 255 items"]),
    (vspec(podFailurePolicy={"rules": [exit_rule("FailJob", "Is", [1], container="nope")]}),
     [f'{PFP}.onExitCodes.operator: Unsupported value: "Is": supported values: "In", "NotIn"',
      f'{PFP}.onExitCodes.containerName: Invalid value: "nope": must be one of the container or initContainer names '
      'in the pod template']),
    (vspec(podFailurePolicy={"rules": [{"action": "FailJob"}]}),
     [f"{PFP}: Invalid value: specifying one of OnExitCodes and OnPodConditions is required"]),
    (vspec(podFailurePolicy={"rules": [{**exit_rule("Ignore", "In", [1]), **cond_rule("Ignore", "X")}]}),
     [f"{PFP}: Invalid value: specifying both OnExitCodes and OnPodConditions is not supported"]),
    (vspec(podFailurePolicy={"rules": [{"onPodConditions": [{"type": "X", "status": "Maybe"}]}]}),
     [f'{PFP}.action: Required value: valid values: ["Count" "FailIndex" "FailJob" "Ignore"]',
      f'{PFP}.onPodConditions[0].status: Unsupported value: "Maybe": supported values: "False", "True", "Unknown"']),
    (vspec(podFailurePolicy={"rules": [exit_rule("FailIndex", "In", [1])]}),
     [f'{PFP}.action: Invalid value: "FailIndex": requires the backoffLimitPerIndex to be set']),
    (vspec(podFailurePolicy={"rules": [FAIL_42] * 21}),
     ["spec.podFailurePolicy.rules: Too many: 21: must have at most 20 items"]),
    (vspec(podFailurePolicy={"rules": [FAIL_42]}, podReplacementPolicy="TerminatingOrFailed"),
     ['spec.podReplacementPolicy: Unsupported value: "TerminatingOrFailed": supported values: "Failed"']),
    (vspec(podReplacementPolicy="Sometimes"),
     ['spec.podReplacementPolicy: Unsupported value: "Sometimes": supported values: "Failed", "TerminatingOrFailed"']),
    (vspec(backoffLimitPerIndex=1), ["spec.backoffLimitPerIndex: Invalid value: 1: requires indexed completion mode"]),
    (vspec(completionMode="Indexed", backoffLimitPerIndex=1, maxFailedIndexes=2), []),
    (vspec(completionMode="Indexed", maxFailedIndexes=5),
     ["spec.backoffLimitPerIndex: Required value: when maxFailedIndexes is specified",
      "spec.maxFailedIndexes: Invalid value: 5: must be less than or equal to completions"]),
    (vspec(completionMode="Indexed", backoffLimitPerIndex=-1),
     ["spec.backoffLimitPerIndex: Invalid value: -1: must be greater than or equal to 0"]),
    (vspec("OnFailure", completionMode="Indexed", backoffLimitPerIndex=1),
     ['spec.template.spec.restartPolicy: Invalid value: "OnFailure": only "Never" is supported when '
      'backoffLimitPerIndex is specified']),
    ({**vspec(completionMode="Indexed", backoffLimitPerIndex=1), "completions": 100_001},
     ["spec.maxFailedIndexes: Required value: must be specified when completions is above 100000"]),
    (vspec(completionMode="Indexed", successPolicy={"rules": [{"succeededIndexes": "0,2-3", "succeededCount": 2}]}), []),
    (vspec(completionMode="Indexed", successPolicy={"rules": []}),
     ["spec.successPolicy.rules: Required value: at least one rules must be specified when the successPolicy is "
      "specified"]),
    (vspec(completionMode="Indexed", successPolicy={"rules": [{}]}),
     ["spec.successPolicy.rules[0]: Required value: at least one of succeededCount or succeededIndexes must be "
      "specified"]),
    (vspec(completionMode="Indexed", successPolicy={"rules": [{"succeededIndexes": "3-1"}]}),
     ['spec.successPolicy.rules[0].succeededIndexes: Invalid value: "3-1": error parsing succeededIndexes: '
      "non-increasing order, previous: 3, current: 1"]),
    (vspec(completionMode="Indexed", successPolicy={"rules": [{"succeededIndexes": "0-1", "succeededCount": 3}]}),
     ["spec.successPolicy.rules[0].succeededCount: Invalid value: 3: must be less than or equal to 2 (the number of "
      "indexes in the specified succeededIndexes field)"]),
    (vspec(completionMode="Indexed", successPolicy={"rules": [{"succeededCount": 5}]}),
     ["spec.successPolicy.rules[0].succeededCount: Invalid value: 5: must be less than or equal to 4 (the number of "
      "specified completions)"]),
    (vspec(successPolicy={"rules": [{"succeededCount": 1}]}),
     ['spec.successPolicy: Invalid value: {"rules": [{"succeededCount": 1}]}: requires indexed completion mode']),
], ids=lambda v: None)
def test_validation_messages(spec, expected):
    assert messages(spec) == expected


def test_policies_are_immutable():
    old = {"metadata": {"name": "j"}, "spec": vspec(completionMode="Indexed", backoffLimitPerIndex=1)}
    new = {"metadata": {"name": "j"}, "spec": vspec(completionMode="Indexed", backoffLimitPerIndex=2,
                                                    podFailurePolicy={"rules": [FAIL_42]},
                                                    podReplacementPolicy="Failed")}
    errs = Errors()
    batch.job(new, errs, True, old)
    fields = [c["field"] for c in errs.causes if "immutable" in c["message"]]
    assert fields == ["spec.podFailurePolicy", "spec.backoffLimitPerIndex"]


# -- suspend -----------------------------------------------------------------------------------

def cond(ctype, status, reason="R", message="M"):
    return {"type": ctype, "status": status, "reason": reason, "message": message,
            "lastProbeTime": "t0", "lastTransitionTime": "t0"}


@pytest.mark.parametrize("before,args,changed,after", [
    ([], ("Suspended", "True", "JobSuspended", "Job suspended"), True, [("Suspended", "True", "JobSuspended")]),
    ([], ("Suspended", "False", "JobResumed", "Job resumed"), False, []),      # never suspended: nothing
    ([cond("Suspended", "True", "JobSuspended", "Job suspended")], ("Suspended", "True", "JobSuspended", "Job suspended"),
     False, [("Suspended", "True", "JobSuspended")]),
    ([cond("Suspended", "True", "JobSuspended", "Job suspended")], ("Suspended", "False", "JobResumed", "Job resumed"),
     True, [("Suspended", "False", "JobResumed")]),
])
def test_ensure_condition(before, args, changed, after):
    assert jobc.ensure_condition(before, *args) is changed
    assert [(c["type"], c["status"], c["reason"]) for c in before] == after
    if changed and before and before[0]["status"] != "t0":
        assert before[0]["lastTransitionTime"] != "t0"


@pytest.mark.parametrize("suspend,conditions,expected", [
    (False, [], ("FailureTarget", "DeadlineExceeded", "Job was active longer than specified deadline")),
    (True, [], None),                                                    # suspended: no deadline
    (False, [cond("Suspended", "True")], None),                          # resumed now: the timer restarts
])
def test_deadline_and_suspend(suspend, conditions, expected):
    j = job({"activeDeadlineSeconds": 10, "suspend": suspend}, conditions)
    got, wait = jobc.finish_target(j, jobc.count_pods(j, []), NOW + 20)  # 20 s after startTime
    assert got == expected
    assert (wait is None) == (suspend or expected is not None)


def restarting(phase="Running", restarts=(0,), init_restarts=()):
    return {"metadata": {"name": "r", "uid": "r"}, "status": {
        "phase": phase,
        "containerStatuses": [{"name": f"c{i}", "restartCount": n} for i, n in enumerate(restarts)],
        "initContainerStatuses": [{"name": f"i{i}", "restartCount": n} for i, n in enumerate(init_restarts)]}}


ON_FAILURE = {"template": {"spec": {"restartPolicy": "OnFailure"}}}
BACKOFF = ("FailureTarget", "BackoffLimitExceeded", "Job has reached the specified backoff limit")


@pytest.mark.parametrize("spec,pods,expected", [
    ({**ON_FAILURE, "backoffLimit": 2}, [restarting(restarts=(1,))], None),
    ({**ON_FAILURE, "backoffLimit": 2}, [restarting(restarts=(2,))], BACKOFF),
    ({**ON_FAILURE, "backoffLimit": 3}, [restarting(restarts=(1, 1), init_restarts=(1,))], BACKOFF),
    ({**ON_FAILURE, "backoffLimit": 2}, [restarting(restarts=(1,)), restarting("Pending", restarts=(1,))], BACKOFF),
    ({**ON_FAILURE, "backoffLimit": 0}, [restarting(restarts=(1,))], BACKOFF),
    ({**ON_FAILURE, "backoffLimit": 0}, [restarting(restarts=(0,))], None),
    ({**ON_FAILURE, "backoffLimit": 1}, [restarting("Succeeded", restarts=(5,))], None),
    ({"template": {"spec": {"restartPolicy": "Never"}}, "backoffLimit": 1}, [restarting(restarts=(5,))], None),
], ids=["below", "reached", "init-and-containers-summed", "pending-counts", "limit-0-any-restart",
        "limit-0-none", "finished-pod-not-summed", "never-policy"])
def test_finish_target_on_failure_restarts(spec, pods, expected):
    """``pastBackoffLimitOnFailure``: with restartPolicy OnFailure container restarts count."""
    j = job(spec)
    got, _ = jobc.finish_target(j, jobc.count_pods(j, pods), NOW)
    assert got == expected
