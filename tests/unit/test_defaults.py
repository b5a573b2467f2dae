"""Server-side defaults compared with what a real 1.32 apiserver returns for minimal objects."""

from __future__ import annotations

import copy

import pytest

from tests.unit.apiserver_kinds import apply_defaults, info_for

POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
       "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}

# What `kubectl run p --image=nginx` then `get -o yaml` shows (minus server-allocated fields).
REAL_POD_SPEC = {
    "containers": [{"name": "nginx", "image": "nginx", "imagePullPolicy": "Always", "resources": {},
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File"}],
    "dnsPolicy": "ClusterFirst", "enableServiceLinks": True,
    "preemptionPolicy": "PreemptLowerPriority", "priority": 0, "restartPolicy": "Always",
    "schedulerName": "default-scheduler", "securityContext": {}, "serviceAccount": "default",
    "serviceAccountName": "default", "terminationGracePeriodSeconds": 30,
    "tolerations": [
        {"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists",
         "tolerationSeconds": 300},
        {"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "operator": "Exists",
         "tolerationSeconds": 300}],
}


# what the admission chain adds (ServiceAccount, Priority, DefaultTolerationSeconds; checked
# against a running apiserver in tests/integration/test_admission.py), not the strategy
ADMISSION_FIELDS = ("preemptionPolicy", "priority", "serviceAccount", "serviceAccountName", "tolerations")


def test_pod_matches_real_apiserver():
    out = apply_defaults(POD, ("", "v1", "Pod"))
    assert out["spec"] == {k: v for k, v in REAL_POD_SPEC.items() if k not in ADMISSION_FIELDS}
    assert out["status"] == {"phase": "Pending", "qosClass": "BestEffort"}


def test_pure_and_idempotent():
    before = copy.deepcopy(POD)
    once = apply_defaults(POD, ("", "v1", "Pod"))
    assert POD == before
    assert apply_defaults(once, ("", "v1", "Pod")) == once


@pytest.mark.parametrize("image,policy", [
    ("nginx", "Always"), ("nginx:latest", "Always"), ("nginx:1.27", "IfNotPresent"),
    ("localhost:5000/app", "Always"), ("localhost:5000/app:v2", "IfNotPresent"),
    ("busybox@sha256:abcd", "IfNotPresent"),
])
def test_image_pull_policy(image, policy):
    pod = copy.deepcopy(POD)
    pod["spec"]["containers"][0]["image"] = image
    assert apply_defaults(pod, ("", "v1", "Pod"))["spec"]["containers"][0]["imagePullPolicy"] == policy


@pytest.mark.parametrize("resources,qos", [
    ({}, "BestEffort"),
    ({"requests": {"cpu": "100m"}}, "Burstable"),
    ({"limits": {"cpu": "1", "memory": "1Gi"}}, "Guaranteed"),
    ({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}}, "Burstable"),
])
def test_qos_class_and_requests_from_limits(resources, qos):
    pod = copy.deepcopy(POD)
    pod["spec"]["containers"][0]["resources"] = resources
    out = apply_defaults(pod, ("", "v1", "Pod"))
    assert out["status"]["qosClass"] == qos
    for k, v in resources.get("limits", {}).items():
        assert k in out["spec"]["containers"][0]["resources"]["requests"]


def _tmpl():
    return {"metadata": {"labels": {"app": "a"}},
            "spec": {"containers": [{"name": "c", "image": "busybox:1.36",
                                     "ports": [{"containerPort": 80}]}]}}


def test_deployment():
    d = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
         "spec": {"selector": {"matchLabels": {"app": "a"}}, "template": _tmpl()}}
    spec = apply_defaults(d, ("apps", "v1", "Deployment"))["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "RollingUpdate",
                                "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
    assert (spec["revisionHistoryLimit"], spec["progressDeadlineSeconds"]) == (10, 600)
    pod_spec = spec["template"]["spec"]
    assert pod_spec["restartPolicy"] == "Always" and pod_spec["dnsPolicy"] == "ClusterFirst"
    assert "tolerations" not in pod_spec and "enableServiceLinks" not in pod_spec
    c = pod_spec["containers"][0]
    assert c["imagePullPolicy"] == "IfNotPresent" and c["ports"][0]["protocol"] == "TCP"


@pytest.mark.parametrize("kind,expect", [
    ("ReplicaSet", {"replicas": 1}),
    ("StatefulSet", {"replicas": 1, "podManagementPolicy": "OrderedReady", "revisionHistoryLimit": 10,
                     "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}}),
    ("DaemonSet", {"revisionHistoryLimit": 10, "updateStrategy": {
        "type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}}),
])
def test_workloads(kind, expect):
    obj = {"kind": kind, "metadata": {"name": "x"}, "spec": {"template": _tmpl()}}
    spec = apply_defaults(obj, ("apps", "v1", kind))["spec"]
    for k, v in expect.items():
        assert spec[k] == v


@pytest.mark.parametrize("strategy,expect", [
    (None, {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
    ({}, {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
    ({"type": "RollingUpdate"}, {"type": "RollingUpdate"}),
    ({"type": "RollingUpdate", "rollingUpdate": {}}, {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
    ({"rollingUpdate": {"partition": 2}}, {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}),
    ({"type": "OnDelete"}, {"type": "OnDelete"}),
], ids=["absent", "empty", "explicit-type-no-block", "explicit-type-empty-block", "empty-type-with-block", "ondelete"])
def test_statefulset_update_strategy(strategy, expect):
    """``SetDefaults_StatefulSet``: ``rollingUpdate: {partition: 0}`` comes with a defaulted
    type, or inside a ``rollingUpdate`` the user gave; an explicit ``type: RollingUpdate`` alone
    stays alone (as a 1.32 apiserver returns it)."""
    spec = {"template": _tmpl()} if strategy is None else {"template": _tmpl(), "updateStrategy": strategy}
    out = apply_defaults({"kind": "StatefulSet", "metadata": {"name": "x"}, "spec": spec}, ("apps", "v1", "StatefulSet"))
    assert out["spec"]["updateStrategy"] == expect


def test_job_defaults():
    job = {"kind": "Job", "metadata": {"name": "j", "uid": "u1"},
           "spec": {"template": {"spec": {"restartPolicy": "Never",
                                          "containers": [{"name": "c", "image": "busybox"}]}}}}
    spec = apply_defaults(job, ("batch", "v1", "Job"))["spec"]
    assert (spec["parallelism"], spec["completions"], spec["backoffLimit"]) == (1, 1, 6)
    assert spec["completionMode"] == "NonIndexed" and spec["suspend"] is False
    assert spec["template"]["spec"]["restartPolicy"] == "Never"


def test_job_parallelism_only_leaves_completions_unset():
    spec = apply_defaults({"spec": {"parallelism": 3}}, ("batch", "v1", "Job"))["spec"]
    assert spec["parallelism"] == 3 and "completions" not in spec


@pytest.mark.parametrize("svc_type", ["ClusterIP", "NodePort"])
def test_service(svc_type):
    svc = {"kind": "Service", "metadata": {"name": "s"},
           "spec": {"type": svc_type, "selector": {"app": "a"}, "ports": [{"port": 80}]}}
    spec = apply_defaults(svc, ("", "v1", "Service"))["spec"]
    assert spec["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80}]
    assert spec["sessionAffinity"] == "None" and spec["ipFamilies"] == ["IPv4"]
    assert ("externalTrafficPolicy" in spec) == (svc_type == "NodePort")


def test_namespace_secret_and_unknown_kind():
    ns = apply_defaults({"metadata": {"name": "team"}}, ("", "v1", "Namespace"))
    assert ns["spec"] == {"finalizers": ["kubernetes"]} and ns["status"] == {"phase": "Active"}
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team"}
    assert apply_defaults({"data": {}}, ("", "v1", "Secret"))["type"] == "Opaque"
    cm = {"data": {"a": "b"}}
    assert apply_defaults(cm, ("", "v1", "ConfigMap")) == cm


def test_namespace_emptied_finalizers_stay_empty():
    ns = {"metadata": {"name": "team"}, "spec": {"finalizers": []}, "status": {"phase": "Terminating"}}
    out = apply_defaults(ns, ("", "v1", "Namespace"))
    assert out["spec"]["finalizers"] == [] and out["status"]["phase"] == "Terminating"


# --- json_copy: the deep copy apply_defaults starts from -----------------------------------

from fractions import Fraction  # noqa: E402

from controlplane.apiserver.meta.jsonutil import json_copy  # noqa: E402

COPY_CASES = [
    {"a": {"b": [1, {"c": None}], "d": "s"}, "e": 1.5, "f": True},
    [[], {}, [[{"x": [0]}]]],
    {"q": Fraction(1, 3), "t": (1, [2])},  # not JSON: handed to copy.deepcopy
    "scalar",
    None,
]


@pytest.mark.parametrize("value", COPY_CASES, ids=["nested", "lists", "non-json", "str", "none"])
def test_json_copy_is_an_independent_equal_copy(value):
    snapshot = copy.deepcopy(value)
    out = json_copy(value)
    assert out == value and type(out) is type(value)
    containers = []

    def walk(a, b):
        if isinstance(a, (dict, list)):
            assert a is not b
            containers.append(b)
            for x, y in (zip(a.values(), b.values()) if isinstance(a, dict) else zip(a, b)):
                walk(x, y)
    walk(value, out)
    for c in containers:  # mutating the copy leaves the input alone
        if isinstance(c, dict):
            c["new"] = 1
        else:
            c.append(1)
    assert value == snapshot


def test_non_json_values_inside_are_deep_copied():
    inner = [1, 2]
    obj = {"t": (inner,)}
    out = json_copy(obj)
    assert out == obj and out["t"][0] is not inner


@pytest.mark.parametrize("gvk,obj", [
    (("", "v1", "Pod"), POD),
    (("apps", "v1", "Deployment"), {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                                    "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}}),
    (("", "v1", "Service"), {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                             "spec": {"ports": [{"port": 80}]}}),
])
def test_defaulting_never_touches_the_input(gvk, obj):
    before = copy.deepcopy(obj)
    first = apply_defaults(obj, gvk)
    assert obj == before
    first["spec"]["mutated"] = True
    assert apply_defaults(obj, gvk) != first and obj == before


def _ds(annotations=None, image="busybox:1.36"):
    t = _tmpl()
    t["spec"]["containers"][0]["image"] = image
    md = {"name": "ds", "namespace": "default", **({"annotations": annotations} if annotations else {})}
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": md,
            "spec": {"selector": {"matchLabels": {"app": "a"}}, "template": t}}


def _gen(obj):
    return obj["metadata"]["annotations"]["deprecated.daemonset.template.generation"]


def test_daemonset_template_generation():
    """kube-apiserver's ``spec.templateGeneration``, shown as the
    ``deprecated.daemonset.template.generation`` annotation: 1 on create (a larger one the client
    gave is kept), kept on update, plus one when the template changes; the client cannot move it."""
    info = info_for(("apps", "v1", "DaemonSet"))
    created = info.strategy.default_and_validate(info, _ds(), strict=True, old=None)
    assert _gen(created) == "1"
    assert _gen(info.strategy.default_and_validate(info, _ds({"deprecated.daemonset.template.generation": "4"}),
                                                   strict=True, old=None)) == "4"
    same = info.strategy.default_and_validate(info, _ds({"deprecated.daemonset.template.generation": "9"}),
                                              strict=True, old=created)
    assert _gen(same) == "1", "an update keeps the stored generation"
    changed = info.strategy.default_and_validate(info, _ds(image="busybox:2"), strict=True, old=created)
    assert _gen(changed) == "2"
    status_only = copy.deepcopy(changed)
    status_only["status"] = {"numberReady": 1}
    assert _gen(info.strategy.default_and_validate(info, status_only, strict=True, old=changed)) == "2"


def test_statefulset_max_unavailable_dropped():
    """``dropStatefulSetDisabledFields``: MaxUnavailableStatefulSet is off in 1.32, so a new
    ``rollingUpdate.maxUnavailable`` is dropped; a stored one (older server) is kept."""
    info = info_for(("apps", "v1", "StatefulSet"))
    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "s", "namespace": "default"},
           "spec": {"serviceName": "s", "selector": {"matchLabels": {"app": "a"}}, "template": _tmpl(),
                    "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1, "maxUnavailable": 2}}}}
    out = info.strategy.default_and_validate(info, sts, strict=True, old=None)
    assert out["spec"]["updateStrategy"]["rollingUpdate"] == {"partition": 1}
    assert sts["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"] == 2, "the input is left alone"
    stored = copy.deepcopy(out)
    stored["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"] = 2
    kept = info.strategy.default_and_validate(info, sts, strict=True, old=stored)
    assert kept["spec"]["updateStrategy"]["rollingUpdate"] == {"partition": 1, "maxUnavailable": 2}
