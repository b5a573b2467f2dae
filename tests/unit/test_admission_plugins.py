"""The admission plugins' pure logic, table-driven: Pod Security checks and their exact
messages, namespace label parsing, LimitRanger defaults and limits, quota accounting, webhook
rule matching, the ServiceAccount token volume, DefaultTolerationSeconds, and the validation of
webhook configurations and policies. (End to end: tests/integration/test_admission.py.)"""

from __future__ import annotations

import copy
from fractions import Fraction
from typing import Any

import pytest

from controlplane.apiserver.admission.attributes import Attributes
from controlplane.apiserver.admission.defaulttolerationseconds import add_default_tolerations
from controlplane.apiserver.admission.limitranger import apply_defaults, violations
from controlplane.apiserver.admission.podsecurity.checks import evaluate
from controlplane.apiserver.admission.podsecurity.plugin import detail, level_string, parse_policy
from controlplane.apiserver.admission.serviceaccount import MOUNT_PATH, mount_token, should_automount
from controlplane.apiserver.admission.webhooks.matching import rules_match
from controlplane.apiserver.meta.errors import ApiError
from controlplane.apiserver.strategy.builtins import builtin_registry
from controlplane.apiserver.validation.objects import validate
from controlplane.machinery import quota as q
from controlplane.machinery.userinfo import UserInfo

LATEST = (1, 32)
REG = builtin_registry()


def pod(*containers: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i", **c} for c in containers]
                                                  or [{"name": "c", "image": "i"}], **spec}}


RESTRICTED_OK = {"securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                                     "runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}}


# ------------------------------------------------------------------------------ PodSecurity

@pytest.mark.parametrize("level,p,want", [
    ("baseline", pod(), []),
    ("baseline", pod({"securityContext": {"privileged": True}}),
     [("privileged", 'container "c" must not set securityContext.privileged=true')]),
    ("baseline", pod(hostNetwork=True, hostPID=True), [("host namespaces", "hostNetwork=true, hostPID=true")]),
    ("baseline", pod({"ports": [{"containerPort": 80, "hostPort": 8080}]}),
     [("hostPort", 'container "c" uses hostPort 8080')]),
    ("baseline", pod(volumes=[{"name": "h", "hostPath": {"path": "/"}}, {"name": "e", "emptyDir": {}}]),
     [("hostPath volumes", 'volume "h"')]),
    ("baseline", pod({"securityContext": {"capabilities": {"add": ["NET_ADMIN", "CHOWN", "SYS_TIME"]}}}),
     [("non-default capabilities",
       'container "c" must not include "NET_ADMIN", "SYS_TIME" in securityContext.capabilities.add')]),
    ("baseline", pod(securityContext={"sysctls": [{"name": "kernel.msgmax", "value": "1"},
                                                  {"name": "net.ipv4.tcp_syncookies", "value": "1"}]}),
     [("forbidden sysctls", "kernel.msgmax")]),
    ("baseline", pod(securityContext={"seccompProfile": {"type": "Unconfined"}}),
     [("seccompProfile", 'pod must not set securityContext.seccompProfile.type to "Unconfined"')]),
    ("restricted", pod(RESTRICTED_OK), []),
    ("restricted", pod(),
     [("allowPrivilegeEscalation != false",
       'container "c" must set securityContext.allowPrivilegeEscalation=false'),
      ("unrestricted capabilities", 'container "c" must set securityContext.capabilities.drop=["ALL"]'),
      ("runAsNonRoot != true", 'pod or container "c" must set securityContext.runAsNonRoot=true'),
      ("seccompProfile",
       'pod or container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"')]),
    ("restricted", pod({**RESTRICTED_OK, "securityContext": {**RESTRICTED_OK["securityContext"], "runAsUser": 0}},
                       volumes=[{"name": "h", "hostPath": {"path": "/"}}]),
     [("restricted volume types", 'volume "h" uses restricted volume type "hostPath"'),
      ("runAsUser=0", 'container "c" must not set runAsUser=0')]),
    ("restricted", pod({"name": "a", **RESTRICTED_OK}, {"name": "b", **RESTRICTED_OK,
                                                       "securityContext": {**RESTRICTED_OK["securityContext"],
                                                                           "capabilities": {"drop": ["ALL"],
                                                                                            "add": ["NET_RAW"]}}}),
     [("unrestricted capabilities", 'container "b" must not include "NET_RAW" in securityContext.capabilities.add')]),
], ids=["baseline-ok", "privileged", "host-ns", "host-port", "host-path", "caps", "sysctls", "seccomp-baseline",
        "restricted-ok", "restricted-defaults", "restricted-volumes-user", "restricted-caps-add"])
def test_pod_security_checks(level, p, want):
    assert evaluate(level, LATEST, p["metadata"], p["spec"]) == want


def test_the_message_kubernetes_shows_for_a_privileged_pod_at_restricted():
    p = pod({"securityContext": {"privileged": True}})
    assert detail(evaluate("restricted", LATEST, p["metadata"], p["spec"])) == (
        'privileged (container "c" must not set securityContext.privileged=true), '
        'allowPrivilegeEscalation != false (container "c" must set securityContext.allowPrivilegeEscalation=false), '
        'unrestricted capabilities (container "c" must set securityContext.capabilities.drop=["ALL"]), '
        'runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true), '
        'seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" or '
        '"Localhost")')


@pytest.mark.parametrize("version,allowed", [((1, 26), False), ((1, 27), True)])
def test_pod_security_versions(version, allowed):
    p = pod(securityContext={"sysctls": [{"name": "net.ipv4.ip_local_reserved_ports", "value": "1"}]})
    assert (evaluate("baseline", version, p["metadata"], p["spec"]) == []) is allowed


@pytest.mark.parametrize("labels,enforce,errors", [
    ({}, "privileged:latest", 0),
    ({"pod-security.kubernetes.io/enforce": "restricted"}, "restricted:latest", 0),
    ({"pod-security.kubernetes.io/enforce": "baseline", "pod-security.kubernetes.io/enforce-version": "v1.24"},
     "baseline:v1.24", 0),
    ({"pod-security.kubernetes.io/enforce": "baseline", "pod-security.kubernetes.io/enforce-version": "v1.99"},
     "baseline:latest", 0),
    ({"pod-security.kubernetes.io/enforce": "strict"}, "privileged:latest", 1),
    ({"pod-security.kubernetes.io/warn-version": "1.24"}, "privileged:latest", 1),
])
def test_namespace_labels(labels, enforce, errors):
    policy, causes = parse_policy(labels)
    assert level_string(policy["enforce"]) == enforce and len(causes) == errors


# ------------------------------------------------------------------------------ LimitRanger

LR = {"spec": {"limits": [{"type": "Container", "default": {"cpu": "500m"}, "defaultRequest": {"cpu": "250m"},
                           "max": {"cpu": "1"}, "min": {"cpu": "100m"}}]}}
POD_LR = {"spec": {"limits": [{"type": "Pod", "max": {"memory": "1Gi"}}]}}


def test_limitranger_defaults_and_annotation():
    p = pod({"resources": {"requests": {"cpu": "200m"}}}, {"name": "d"})
    apply_defaults(p, [LR])
    assert p["spec"]["containers"][0]["resources"] == {"limits": {"cpu": "500m"}, "requests": {"cpu": "200m"}}
    assert p["spec"]["containers"][1]["resources"] == {"limits": {"cpu": "500m"}, "requests": {"cpu": "250m"}}
    assert p["metadata"]["annotations"]["kubernetes.io/limit-ranger"] == (
        "LimitRanger plugin set: cpu limit for container c; cpu request for container d; cpu limit for container d")


@pytest.mark.parametrize("resources,want", [
    ({"requests": {"cpu": "200m"}, "limits": {"cpu": "500m", "memory": "512Mi"}}, []),
    ({"requests": {"cpu": "50m"}, "limits": {"cpu": "500m", "memory": "1Gi"}},
     ["minimum cpu usage per Container is 100m, but request is 50m"]),
    ({"requests": {"cpu": "200m"}, "limits": {"cpu": "2", "memory": "1Gi"}},
     ["maximum cpu usage per Container is 1, but limit is 2"]),
    ({"requests": {"cpu": "200m"}, "limits": {"memory": "1Gi"}},
     ["maximum cpu usage per Container is 1.  No limit is specified"]),
    ({"requests": {"cpu": "200m", "memory": "2Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}},
     ["maximum memory usage per Pod is 1Gi, but limit is 2Gi"]),
    ({"requests": {"cpu": "200m"}, "limits": {"cpu": "1"}}, ["maximum memory usage per Pod is 1Gi.  No limit is specified"]),
])
def test_limitranger_limits(resources, want):
    assert violations(pod({"resources": resources}), [LR, POD_LR]) == want


# ------------------------------------------------------------------------------ quota

def test_pod_usage_sums_containers_and_maxes_init_containers():
    p = pod({"resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "1"}}},
            {"name": "d", "resources": {"requests": {"cpu": "200m", "nvidia.com/gpu": "1"}}},
            initContainers=[{"name": "i", "image": "i", "resources": {"requests": {"cpu": "2"}}}])
    u = q.pod_usage(p)
    assert u["pods"] == 1 and u["count/pods"] == 1
    assert u["requests.cpu"] == u["cpu"] == Fraction(2)
    assert u["requests.memory"] == 64 * 2**20 and u["limits.cpu"] == 1
    assert u["requests.nvidia.com/gpu"] == 1
    assert q.pod_usage({**p, "status": {"phase": "Succeeded"}}) == {}


@pytest.mark.parametrize("group,resource,obj,want", [
    ("", "services", {"spec": {"type": "NodePort", "ports": [{"port": 1}, {"port": 2}]}},
     {"services": 1, "count/services": 1, "services.nodeports": 2}),
    ("", "configmaps", {}, {"configmaps": 1, "count/configmaps": 1}),
    ("apps", "deployments", {}, {"count/deployments.apps": 1}),
])
def test_object_usage(group, resource, obj, want):
    assert q.usage(group, resource, obj) == want


def test_quota_scopes_and_constraints():
    best_effort = {"spec": {"scopes": ["BestEffort"]}}
    assert q.matches(best_effort, "", "pods", pod()) and not q.matches(best_effort, "", "pods", pod(
        {"resources": {"requests": {"cpu": "1"}}}))
    assert not q.matches(best_effort, "", "configmaps", {})
    by_class = {"spec": {"scopeSelector": {"matchExpressions": [{"scopeName": "PriorityClass", "operator": "In",
                                                                 "values": ["high"]}]}}}
    assert q.matches(by_class, "", "pods", pod(priorityClassName="high"))
    assert not q.matches(by_class, "", "pods", pod())
    assert q.matching_resources("", "pods", ["pods", "requests.cpu", "count/configmaps"]) == ["pods", "requests.cpu"]
    assert q.pod_constraints(["limits.cpu", "pods"], pod({"name": "a"}, {"name": "b", "resources": {
        "limits": {"cpu": "1"}}})) == "must specify limits.cpu for: a"
    assert q.pretty({"pods": Fraction(1), "requests.cpu": Fraction(1, 2)}) == "pods=1,requests.cpu=500m"
    assert q.fmt(Fraction(3 * 2**30), "1Gi") == "3Gi"
    assert q.evaluator_for("count/deployments.apps") == ("apps", "deployments")
    assert q.evaluator_for("requests.memory") == ("", "pods")


# ------------------------------------------------------------------------------ webhook rules

def attrs(op: str = "CREATE", plural: str = "pods", group: str = "", ns: str = "default", sub: str = "") -> Attributes:
    info = next(i for i in REG.all() if i.plural == plural and i.group == group)
    return Attributes(op, info, sub, ns, "x", {}, None, False, UserInfo.make("u"))


def rule(**kw: Any) -> dict[str, Any]:
    return {"apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"], "operations": ["CREATE"], **kw}


@pytest.mark.parametrize("r,a,policy,want", [
    (rule(), attrs(), "Equivalent", True),
    (rule(), attrs("UPDATE"), "Equivalent", False),
    (rule(operations=["*"]), attrs("DELETE"), "Equivalent", True),
    (rule(), attrs(sub="status"), "Equivalent", False),
    (rule(resources=["pods/status"]), attrs(sub="status"), "Equivalent", True),
    (rule(resources=["*/status"]), attrs(sub="status"), "Equivalent", True),
    (rule(resources=["pods/*"]), attrs(), "Equivalent", True),  # (as rules.Matcher: "/*" includes the main resource)
    (rule(resources=["*"]), attrs(sub="exec", op="CONNECT"), "Equivalent", False),
    (rule(resources=["*/*"], operations=["CONNECT"]), attrs(sub="exec", op="CONNECT"), "Equivalent", True),
    (rule(apiVersions=["v2"]), attrs(), "Equivalent", True),
    (rule(apiVersions=["v2"]), attrs(), "Exact", False),
    (rule(scope="Cluster"), attrs(), "Equivalent", False),
    (rule(scope="Namespaced"), attrs(), "Equivalent", True),
    (rule(scope="Cluster", resources=["namespaces"]), attrs(plural="namespaces", ns=""), "Equivalent", True),
    (rule(apiGroups=["apps"], resources=["deployments"]), attrs(plural="deployments", group="apps"), "Exact", True),
], ids=["exact", "other-op", "any-op", "sub-not-main", "sub", "any-status", "sub-star-includes-main", "star-not-sub",
        "star-star", "equivalent-version", "exact-version", "cluster-scope", "namespaced-scope", "ns-is-cluster",
        "group"])
def test_webhook_rules(r, a, policy, want):
    assert rules_match([r], a, policy) is want


# ------------------------------------------------------------------------------ ServiceAccount, tolerations

def test_token_volume_is_added_once_and_mounted_everywhere():
    p = pod({"name": "a"}, {"name": "b", "volumeMounts": [{"name": "own", "mountPath": MOUNT_PATH}]},
            initContainers=[{"name": "i", "image": "i"}])
    mount_token(p, "abcde")
    vols = p["spec"]["volumes"]
    assert [v["name"] for v in vols] == ["kube-api-access-abcde"]
    sources = vols[0]["projected"]["sources"]
    assert sources[0] == {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}
    assert sources[1]["configMap"]["name"] == "kube-root-ca.crt"
    assert p["spec"]["containers"][0]["volumeMounts"] == [{"name": "kube-api-access-abcde", "readOnly": True,
                                                           "mountPath": MOUNT_PATH}]
    assert p["spec"]["containers"][1]["volumeMounts"] == [{"name": "own", "mountPath": MOUNT_PATH}]
    assert p["spec"]["initContainers"][0]["volumeMounts"][0]["name"] == "kube-api-access-abcde"
    again = copy.deepcopy(p)
    mount_token(again)
    assert again == p


@pytest.mark.parametrize("sa,spec,want", [({}, {}, True), ({"automountServiceAccountToken": False}, {}, False),
                                          ({"automountServiceAccountToken": False},
                                           {"automountServiceAccountToken": True}, True)])
def test_automount_rules(sa, spec, want):
    assert should_automount(sa, {"spec": spec}) is want


def test_existing_toleration_not_duplicated():
    spec = {"tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
                             "tolerationSeconds": 5}]}
    add_default_tolerations(spec)
    assert [t["key"] for t in spec["tolerations"]] == ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"]
    assert spec["tolerations"][0]["tolerationSeconds"] == 5
    tolerate_all = {"tolerations": [{"operator": "Exists"}]}
    add_default_tolerations(tolerate_all)
    assert tolerate_all["tolerations"] == [{"operator": "Exists"}]


# ------------------------------------------------------------------------------ validation

ADMREG = "admissionregistration.k8s.io"


def _hook(**kw: Any) -> dict[str, Any]:
    return {"name": "a.b.c", "sideEffects": "None", "admissionReviewVersions": ["v1"],
            "clientConfig": {"url": "https://h/x"}, **kw}


@pytest.mark.parametrize("hook,message", [
    (_hook(), None),
    (_hook(name="short.name"), 'webhooks[0].name: Invalid value: "short.name": should be a domain with at least three '
                               "segments separated by dots"),
    (_hook(clientConfig={"url": "http://h/x"}), "webhooks[0].clientConfig.url: Invalid value: \"http://h/x\": 'https' "
                                                "is the only allowed URL scheme"),
    (_hook(timeoutSeconds=31), "webhooks[0].timeoutSeconds: Invalid value: 31: the timeout value must be between 1 "
                               "and 30 seconds"),
    (_hook(sideEffects="Some"), 'webhooks[0].sideEffects: Unsupported value: "Some": supported values: "None", '
                                '"NoneOnDryRun"'),
    (_hook(clientConfig={}), "webhooks[0].clientConfig: Required value: exactly one of url or service is required"),
    (_hook(matchConditions=[{"name": "m", "expression": "object.x =="}]), "compilation failed"),
])
def test_webhook_configuration_validation(hook, message):
    obj = {"apiVersion": f"{ADMREG}/v1", "kind": "ValidatingWebhookConfiguration", "metadata": {"name": "v"},
           "webhooks": [hook]}
    if message is None:
        validate(obj, (ADMREG, "v1", "ValidatingWebhookConfiguration"), strict=True)
        return
    with pytest.raises(ApiError) as e:
        validate(obj, (ADMREG, "v1", "ValidatingWebhookConfiguration"), strict=True)
    assert e.value.code == 422 and message in e.value.message


def test_binding_may_not_both_deny_and_warn():
    obj = {"apiVersion": f"{ADMREG}/v1", "kind": "ValidatingAdmissionPolicyBinding", "metadata": {"name": "b"},
           "spec": {"policyName": "p", "validationActions": ["Deny", "Warn"]}}
    with pytest.raises(ApiError) as e:
        validate(obj, (ADMREG, "v1", "ValidatingAdmissionPolicyBinding"), strict=True)
    assert "must not contain both Deny and Warn" in e.value.message


def test_limit_range_and_quota_validation():
    lr = {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "l"},
          "spec": {"limits": [{"type": "Container", "min": {"cpu": "2"}, "max": {"cpu": "1"}}]}}
    with pytest.raises(ApiError) as e:
        validate(lr, ("", "v1", "LimitRange"), strict=True)
    assert 'spec.limits[0].min[cpu]: Invalid value: "2": min value 2 is greater than max value 1' in e.value.message
    rq = {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q"}, "spec": {"hard": {"pods": "-1"}}}
    with pytest.raises(ApiError) as e:
        validate(rq, ("", "v1", "ResourceQuota"), strict=True)
    assert 'spec.hard[pods]: Invalid value: "-1": must be greater than or equal to 0' in e.value.message


@pytest.mark.parametrize("hard, scopes, message", [
    ({"pods": "2"}, ["BestEffort"], None),
    ({"cpu": "1", "pods": "2"}, ["NotBestEffort", "Terminating"], None),
    ({"cpu": "1"}, ["BestEffort"],
     'spec.scopes: Invalid value: []core.ResourceQuotaScope{"BestEffort"}: unsupported scope applied to resource'),
    ({"services": "3"}, ["Terminating"],
     'spec.scopes: Invalid value: []core.ResourceQuotaScope{"Terminating"}: unsupported scope applied to resource'),
    ({"pods": "1"}, ["Bogus"], 'spec.scopes: Invalid value: []core.ResourceQuotaScope{"Bogus"}: unsupported scope'),
    ({"pods": "1"}, ["BestEffort", "NotBestEffort"],
     'spec.scopes: Invalid value: []core.ResourceQuotaScope{"BestEffort", "NotBestEffort"}: conflicting scopes'),
    ({"example.com/widgets": "1"}, ["BestEffort"], None),  # not a standard quota resource
])
def test_quota_scopes(hard, scopes, message):
    rq = {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q"},
          "spec": {"hard": hard, "scopes": scopes}}
    if message is None:
        validate(rq, ("", "v1", "ResourceQuota"), strict=True)
        return
    with pytest.raises(ApiError) as e:
        validate(rq, ("", "v1", "ResourceQuota"), strict=True)
    assert e.value.code == 422 and message in e.value.message, e.value.message


@pytest.mark.parametrize("value,used,hard,want", [
    (Fraction(64 << 20), "0", "200Mi", "64Mi"),  # a zero takes the added format
    (Fraction(128 << 20), "64Mi", "1G", "128Mi"),
    (Fraction(128 << 20), None, "200Mi", "128Mi"),
    (Fraction(3, 10), "100m", "1", "300m"),
    (Fraction(2), "1", "5", "2"),
])
def test_quota_used_keeps_quantity_formats(value, used, hard, want):
    from controlplane.machinery import quota as qm
    assert qm.fmt_added(value, used, hard) == want


def test_quota_refusal_names_quantities_in_the_hard_format():
    from controlplane.machinery import quota as qm
    assert qm.pretty({"limits.memory": Fraction(64 << 20), "pods": Fraction(1)},
                     {"limits.memory": "100Mi", "pods": "2"}) == "limits.memory=64Mi,pods=1"
