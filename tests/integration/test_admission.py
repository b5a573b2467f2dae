"""The admission chain against a real apiserver, with the real kubectl and the real
``kubernetes`` client (issue 14's "Must show"): a validating webhook's refusal as kubectl shows
it; a mutating webhook's JSONPatch applied; a webhook that times out under failurePolicy Fail
(500, nothing written) and Ignore (written); a webhook answering garbage (a clear error, nothing
written); PodSecurity ``restricted`` refusing a privileged pod with Kubernetes' message (and
``warn`` as a kubectl warning); a quota refusing the pod over it with Kubernetes' message
(``kubectl create quota``, the quota controller keeping ``status.used``); LimitRanger defaults
and limits; Priority; a ValidatingAdmissionPolicy in CEL; audit annotations.

Webhooks are served by ``webhook_server.py`` (HTTPS with its own CA) and scoped to each test's
namespace by a namespaceSelector, so the session's other tests never meet them.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, Callable

import pytest

from tests.fixtures.poll import wait_for
from tests.integration.webhook_server import WebhookServer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def hooks():
    server = WebhookServer().start()
    yield server
    server.stop()


@pytest.fixture
def ns(kubectl):
    name = f"adm-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", name)
    kubectl("label", "namespace", name, f"adm-test={name}")
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def webhook_configs(kubectl):
    made: list[tuple[str, str]] = []

    def apply(kind: str, name: str, ns: str, hooks: list[dict[str, Any]]) -> None:
        for h in hooks:
            h.setdefault("namespaceSelector", {"matchLabels": {"adm-test": ns}})
            h.setdefault("sideEffects", "None")
            h.setdefault("admissionReviewVersions", ["v1"])
            h.setdefault("rules", [{"apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods", "configmaps"],
                                    "operations": ["CREATE", "UPDATE"]}])
        obj = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind, "metadata": {"name": name},
               "webhooks": hooks}
        kubectl("apply", "-f", "-", input=json.dumps(obj))
        made.append((kind.lower() + "s", name))

    yield apply
    for plural, name in made:
        kubectl("delete", plural, name, "--ignore-not-found", check=False)


def _pod(name: str, ns: str, **spec: Any) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
                       "spec": {"containers": [{"name": "c", "image": "busybox", **spec.pop("container", {})}],
                                **spec}})


def _exists(kubectl, kind: str, name: str, ns: str) -> bool:
    return kubectl("get", kind, name, "-n", ns, check=False).returncode == 0


def _wait_config(kubectl, ns: str, probe: Callable[[], bool]) -> None:
    """A configuration reaches the apiserver's chain through its watch cache: wait until it acts."""
    wait_for("the webhook configuration to take effect", probe, 20.0, 0.1)


def test_validating_webhook_denies_with_its_message(kubectl, ns, hooks, webhook_configs):
    webhook_configs("ValidatingWebhookConfiguration", f"deny-{ns}", ns, [
        {"name": "deny.admission.example.com", "clientConfig": {"url": hooks.url("/deny"), "caBundle": hooks.ca_bundle}}])
    kubectl("create", "configmap", "good", "-n", ns, "--from-literal=a=b")
    def denied() -> Any:
        r = kubectl("create", "configmap", "bad-one", "-n", ns, "--from-literal=a=b", check=False)
        return r if r.returncode != 0 else (kubectl("delete", "configmap", "bad-one", "-n", ns) and None)
    r = wait_for("the refusal", denied, 20.0, 0.1)
    assert 'admission webhook "deny.admission.example.com" denied the request: pods named bad-one are not welcome ' \
           'here' in r.stderr
    r = kubectl("run", "bad-pod", "-n", ns, "--image=busybox", check=False)
    assert r.returncode != 0
    assert 'Error from server (Forbidden): admission webhook "deny.admission.example.com" denied the request: ' \
           "pods named bad-pod are not welcome here" in r.stderr
    assert not _exists(kubectl, "pod", "bad-pod", ns) and _exists(kubectl, "configmap", "good", ns)
    review = hooks.seen("/deny")[-1]
    assert review["apiVersion"] == "admission.k8s.io/v1" and review["kind"] == "AdmissionReview"
    req = review["request"]
    assert req["operation"] == "CREATE" and req["namespace"] == ns and req["name"] == "bad-pod"
    assert req["resource"] == {"group": "", "version": "v1", "resource": "pods"}
    assert req["userInfo"]["username"] == "kubernetes-admin" and "system:masters" in req["userInfo"]["groups"]
    assert req["object"]["spec"]["containers"][0]["imagePullPolicy"] == "Always"  # defaulted before the webhook
    # a dry run reaches it too (sideEffects None), flagged as such
    r = kubectl("run", "bad-dry", "-n", ns, "--image=busybox", "--dry-run=server", check=False)
    assert r.returncode != 0 and hooks.seen("/deny")[-1]["request"]["dryRun"] is True


def test_mutating_webhook_patch_is_applied(kubectl, ns, hooks, webhook_configs, apiserver):
    webhook_configs("MutatingWebhookConfiguration", f"mutate-{ns}", ns, [
        {"name": "mutate.admission.example.com", "reinvocationPolicy": "IfNeeded",
         "clientConfig": {"url": hooks.url("/mutate"), "caBundle": hooks.ca_bundle}}])
    def mutated() -> Any:
        name = f"m{uuid.uuid4().hex[:5]}"
        r = kubectl("create", "configmap", name, "-n", ns, "--from-literal=a=b")
        labels = json.loads(kubectl("get", "configmap", name, "-n", ns, "-o", "json").stdout)["metadata"].get("labels")
        return (r, labels) if labels else None
    r, labels = wait_for("the patch", mutated, 20.0, 0.1)
    assert labels == {"mutated-by": "webhook"}
    assert "Warning: the mutating webhook added a label" in r.stderr
    # a pod: the patch lands on the defaulted pod and the pod is still valid
    kubectl("apply", "-f", "-", input=_pod("p1", ns))
    pod = json.loads(kubectl("get", "pod", "p1", "-n", ns, "-o", "json").stdout)
    assert pod["metadata"]["labels"] == {"mutated-by": "webhook"}
    # the audit event records the call and the webhook's own annotation
    def audited() -> Any:
        for line in apiserver.audit_log.read_text().splitlines():
            ev = json.loads(line)
            ann = ev.get("annotations") or {}
            ref = ev.get("objectRef") or {}
            if ev.get("stage") == "ResponseComplete" and ev["verb"] == "create" and ref.get("resource") == "pods" \
                    and ref.get("namespace") == ns:
                return ann
        return None
    ann = wait_for("the audit event", audited, 20.0, 0.1)
    assert json.loads(ann["mutation.webhook.admission.k8s.io/round_0_index_0"]) == {
        "configuration": f"mutate-{ns}", "webhook": "mutate.admission.example.com", "mutated": True}
    assert ann["mutate.admission.example.com/mutated"] == "label"


def test_exec_is_a_connect_through_admission(kubectl, ns, hooks, webhook_configs):
    webhook_configs("ValidatingWebhookConfiguration", f"exec-{ns}", ns, [
        {"name": "exec.admission.example.com", "clientConfig": {"url": hooks.url("/deny"), "caBundle": hooks.ca_bundle},
         "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods/exec"], "operations": ["CONNECT"]}]}])
    kubectl("run", "bad-exec", "-n", ns, "--image=busybox")  # (never scheduled here: admission comes first)
    def refused() -> Any:
        r = kubectl("exec", "bad-exec", "-n", ns, "--", "true", check=False)
        return r if "denied the request" in r.stderr else None
    r = wait_for("the CONNECT refusal", refused, 20.0, 0.1)
    assert 'admission webhook "exec.admission.example.com" denied the request: pods named bad-exec are not ' \
           "welcome here" in r.stderr
    req = hooks.seen("/deny")[-1]["request"]
    assert req["operation"] == "CONNECT" and req["subResource"] == "exec" and req["name"] == "bad-exec"
    assert req["object"]["kind"] == "PodExecOptions" and req["object"]["command"] == ["true"]


def test_webhook_by_service_reference(kubectl, ns, webhook_configs):
    """``clientConfig.service``: reached through the Service's endpoints, TLS checked against
    ``<service>.<namespace>.svc``."""
    server = WebhookServer(sans=(f"wh.{ns}.svc",)).start()
    try:
        svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "wh", "namespace": ns},
               "spec": {"ports": [{"name": "https", "port": 443, "targetPort": server.port}]}}
        ep = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "wh", "namespace": ns},
              "subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"name": "https", "port": server.port}]}]}
        for obj in (svc, ep):
            kubectl("apply", "-f", "-", input=json.dumps(obj))
        webhook_configs("ValidatingWebhookConfiguration", f"svc-{ns}", ns, [
            {"name": "svc.admission.example.com",
             "clientConfig": {"service": {"namespace": ns, "name": "wh", "path": "/deny"},
                              "caBundle": server.ca_bundle}}])
        def refused() -> Any:
            r = kubectl("create", "configmap", "bad-svc", "-n", ns, "--from-literal=a=b", check=False)
            return r if r.returncode != 0 else (kubectl("delete", "configmap", "bad-svc", "-n", ns) and None)
        r = wait_for("the refusal through the service", refused, 20.0, 0.1)
        assert 'admission webhook "svc.admission.example.com" denied the request: pods named bad-svc' in r.stderr
        assert server.seen("/deny")
    finally:
        server.stop()


def test_webhook_timeout_follows_failure_policy(kubectl, ns, hooks, webhook_configs):
    webhook_configs("ValidatingWebhookConfiguration", f"slow-{ns}", ns, [
        {"name": "slow.admission.example.com", "timeoutSeconds": 1, "failurePolicy": "Fail",
         "clientConfig": {"url": hooks.url("/slow"), "caBundle": hooks.ca_bundle},
         "objectSelector": {"matchLabels": {"policy": "fail"}}},
        {"name": "slow-ignored.admission.example.com", "timeoutSeconds": 1, "failurePolicy": "Ignore",
         "clientConfig": {"url": hooks.url("/slow"), "caBundle": hooks.ca_bundle},
         "objectSelector": {"matchLabels": {"policy": "ignore"}}}])
    def refused() -> Any:
        name = f"f{uuid.uuid4().hex[:5]}"
        obj = json.loads(kubectl("create", "configmap", name, "-n", ns, "--from-literal=a=b", "-o", "json",
                                 "--dry-run=client").stdout)
        obj["metadata"]["labels"] = {"policy": "fail"}
        r = kubectl("apply", "-f", "-", input=json.dumps(obj), check=False)
        return (r, name) if r.returncode != 0 else None
    started = time.monotonic()
    r, name = wait_for("the timeout", refused, 20.0, 0.1)
    assert 'Internal error occurred: failed calling webhook "slow.admission.example.com": failed to call webhook: ' \
           f'Post "{hooks.url("/slow")}?timeout=1s": context deadline exceeded' in r.stderr
    assert time.monotonic() - started < 15
    assert not _exists(kubectl, "configmap", name, ns)
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ignored", "namespace": ns,
                                                                "labels": {"policy": "ignore"}}, "data": {"a": "b"}}
    kubectl("apply", "-f", "-", input=json.dumps(obj))
    assert _exists(kubectl, "configmap", "ignored", ns)


def test_webhook_answering_garbage_writes_nothing(kubectl, ns, hooks, webhook_configs):
    webhook_configs("MutatingWebhookConfiguration", f"garbage-{ns}", ns, [
        {"name": "garbage.admission.example.com", "clientConfig": {"url": hooks.url("/garbage"),
                                                                   "caBundle": hooks.ca_bundle}}])
    def refused() -> Any:
        name = f"g{uuid.uuid4().hex[:5]}"
        r = kubectl("create", "configmap", name, "-n", ns, "--from-literal=a=b", check=False)
        return (r, name) if r.returncode != 0 else None
    r, name = wait_for("the refusal", refused, 20.0, 0.1)
    assert 'Internal error occurred: failed calling webhook "garbage.admission.example.com": failed to call ' \
           "webhook: couldn't get version/kind; json parse error:" in r.stderr
    assert not _exists(kubectl, "configmap", name, ns)
    r = kubectl("run", "garbage-pod", "-n", ns, "--image=busybox", check=False)
    assert r.returncode != 0 and "failed calling webhook" in r.stderr
    assert not _exists(kubectl, "pod", "garbage-pod", ns)


def test_webhook_patch_of_the_wrong_type_writes_nothing(kubectl, ns, hooks, webhook_configs):
    webhook_configs("MutatingWebhookConfiguration", f"badpatch-{ns}", ns, [
        {"name": "badpatch.admission.example.com", "clientConfig": {"url": hooks.url("/badpatch"),
                                                                    "caBundle": hooks.ca_bundle}}])
    def refused() -> Any:
        name = f"b{uuid.uuid4().hex[:5]}"
        r = kubectl("create", "configmap", name, "-n", ns, "--from-literal=a=b", check=False)
        return (r, name) if r.returncode != 0 else None
    r, name = wait_for("the refusal", refused, 20.0, 0.1)
    assert r.stderr.strip() == ('error: failed to create configmap: Internal error occurred: ConfigMap in version '
                                '"v1" cannot be handled as a ConfigMap: json: cannot unmarshal string into Go struct '
                                'field ConfigMap.data of type map[string]string')
    assert not _exists(kubectl, "configmap", name, ns)


def test_webhook_with_a_wrong_ca_is_a_clear_error(kubectl, ns, hooks, webhook_configs):
    other = WebhookServer()  # (another CA, never started)
    webhook_configs("ValidatingWebhookConfiguration", f"wrongca-{ns}", ns, [
        {"name": "wrongca.admission.example.com", "clientConfig": {"url": hooks.url("/allow"),
                                                                   "caBundle": other.ca_bundle}}])
    def refused() -> Any:
        r = kubectl("create", "configmap", f"w{uuid.uuid4().hex[:5]}", "-n", ns, "--from-literal=a=b", check=False)
        return r if r.returncode != 0 else None
    r = wait_for("the refusal", refused, 20.0, 0.1)
    assert 'failed calling webhook "wrongca.admission.example.com": failed to call webhook: Post' in r.stderr
    assert "certificate" in r.stderr


def test_podsecurity_restricted_rejects_a_privileged_pod(kubectl, ns):
    kubectl("label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted")
    r = kubectl("apply", "-f", "-", input=_pod("priv", ns, container={"securityContext": {"privileged": True}}),
                check=False)
    assert r.returncode != 0
    assert r.stderr.strip() == (
        'Error from server (Forbidden): error when creating "STDIN": pods "priv" is forbidden: violates PodSecurity '
        '"restricted:latest": privileged (container "c" must not set securityContext.privileged=true), '
        'allowPrivilegeEscalation != false (container "c" must set securityContext.allowPrivilegeEscalation=false), '
        'unrestricted capabilities (container "c" must set securityContext.capabilities.drop=["ALL"]), '
        'runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true), '
        'seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" or '
        '"Localhost")')
    assert not _exists(kubectl, "pod", "priv", ns)
    good = {"securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                                "runAsNonRoot": True, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}}}
    kubectl("apply", "-f", "-", input=_pod("ok", ns, container=good))
    # warn mode: the pod is created, kubectl prints the warning; a stricter enforce level warns about it
    kubectl("label", "namespace", ns, "pod-security.kubernetes.io/enforce=baseline", "--overwrite")
    kubectl("label", "namespace", ns, "pod-security.kubernetes.io/warn=restricted")
    r = kubectl("run", "warned", "-n", ns, "--image=busybox")
    assert 'Warning: would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false' in r.stderr
    r = kubectl("label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted", "--overwrite")
    assert f'Warning: existing pods in namespace "{ns}" violate the new PodSecurity enforce level "restricted:latest"' \
        in r.stderr
    assert "Warning: warned: allowPrivilegeEscalation != false, unrestricted capabilities, runAsNonRoot != true, " \
           "seccompProfile" in r.stderr
    r = kubectl("label", "namespace", ns, "pod-security.kubernetes.io/audit=strict", check=False)
    assert r.returncode != 0 and 'metadata.labels[pod-security.kubernetes.io/audit]: Invalid value: "strict": ' \
                                 "must be one of privileged, baseline, restricted" in r.stderr


def test_quota_blocks_the_pod_over_it(kubectl, ns, controller_manager):
    kubectl("create", "quota", "q", "-n", ns, "--hard=pods=2,count/configmaps=5")
    wait_for("the quota controller's status", lambda: (json.loads(
        kubectl("get", "quota", "q", "-n", ns, "-o", "json").stdout).get("status") or {}).get("used"), 20.0, 0.1)
    kubectl("run", "p1", "-n", ns, "--image=busybox")
    kubectl("run", "p2", "-n", ns, "--image=busybox")
    r = kubectl("run", "p3", "-n", ns, "--image=busybox", check=False)
    assert r.returncode != 0
    assert r.stderr.strip() == ('Error from server (Forbidden): pods "p3" is forbidden: exceeded quota: q, '
                                "requested: pods=1, used: pods=2, limited: pods=2")
    assert not _exists(kubectl, "pod", "p3", ns)
    table = kubectl("get", "quota", "q", "-n", ns).stdout.split("\n")
    assert table[0].split() == ["NAME", "AGE", "REQUEST", "LIMIT"]
    assert "pods: 2/2" in table[1] and "count/configmaps: " in table[1]
    # deleting a pod gives its share back (the controller recomputes)
    kubectl("delete", "pod", "p1", "-n", ns, "--wait=false")
    wait_for("the freed quota", lambda: kubectl("run", "p3", "-n", ns, "--image=busybox", check=False).returncode == 0,
             20.0, 0.1)


def test_limitranger_defaults_and_limits(kubectl, ns):
    lr = {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "lr", "namespace": ns},
          "spec": {"limits": [{"type": "Container", "default": {"cpu": "500m", "memory": "128Mi"},
                               "max": {"cpu": "1"}}]}}
    kubectl("apply", "-f", "-", input=json.dumps(lr))
    stored = json.loads(kubectl("get", "limitrange", "lr", "-n", ns, "-o", "json").stdout)
    assert stored["spec"]["limits"][0]["defaultRequest"] == {"cpu": "500m", "memory": "128Mi"}
    def defaulted() -> Any:
        name = f"d{uuid.uuid4().hex[:5]}"
        kubectl("run", name, "-n", ns, "--image=busybox")
        pod = json.loads(kubectl("get", "pod", name, "-n", ns, "-o", "json").stdout)
        return pod if pod["spec"]["containers"][0]["resources"] else None
    pod = wait_for("LimitRanger's defaults", defaulted, 20.0, 0.1)
    assert pod["spec"]["containers"][0]["resources"] == {"limits": {"cpu": "500m", "memory": "128Mi"},
                                                         "requests": {"cpu": "500m", "memory": "128Mi"}}
    name = pod["metadata"]["name"]
    assert pod["metadata"]["annotations"]["kubernetes.io/limit-ranger"] == \
        f"LimitRanger plugin set: cpu, memory request for container {name}; cpu, memory limit for container {name}"
    assert pod["status"]["qosClass"] == "Guaranteed"
    r = kubectl("run", "big", "-n", ns, "--image=busybox", "--overrides",
                json.dumps({"spec": {"containers": [{"name": "big", "image": "busybox",
                                                     "resources": {"limits": {"cpu": "2"}}}]}}), check=False)
    assert r.returncode != 0 and 'pods "big" is forbidden: maximum cpu usage per Container is 1, but limit is 2' in r.stderr


def test_priority_and_tolerations(kubectl, ns):
    r = kubectl("run", "hi", "-n", ns, "--image=busybox", "--overrides",
                json.dumps({"spec": {"priorityClassName": "nope"}}), check=False)
    assert r.returncode != 0 and 'pods "hi" is forbidden: no PriorityClass with name nope was found' in r.stderr
    kubectl("run", "crit", "-n", ns, "--image=busybox", "--overrides",
            json.dumps({"spec": {"priorityClassName": "system-cluster-critical"}}))
    spec = json.loads(kubectl("get", "pod", "crit", "-n", ns, "-o", "json").stdout)["spec"]
    assert spec["priority"] == 2000000000 and spec["preemptionPolicy"] == "PreemptLowerPriority"
    assert [t["key"] for t in spec["tolerations"]] == ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"]
    assert all(t["tolerationSeconds"] == 300 for t in spec["tolerations"])


def test_validating_admission_policy_with_cel(kubectl, ns, apiserver):
    from kubernetes import client, config

    api = client.AdmissionregistrationV1Api(config.new_client_from_config(str(apiserver.kubeconfig)))
    pname = f"max-replicas-{ns}"
    policy = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
              "metadata": {"name": pname},
              "spec": {"failurePolicy": "Fail", "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
                       "matchConstraints": {"resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"],
                                                              "operations": ["CREATE", "UPDATE"],
                                                              "resources": ["deployments"]}]},
                       "validations": [{"expression": "object.spec.replicas <= int(params.data.max)",
                                        "messageExpression": "'replicas must be at most ' + params.data.max",
                                        "reason": "Forbidden"}]}}
    binding = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
               "metadata": {"name": pname},
               "spec": {"policyName": pname, "validationActions": ["Deny"],
                        "paramRef": {"name": "limits", "parameterNotFoundAction": "Deny"},
                        "matchResources": {"namespaceSelector": {"matchLabels": {"adm-test": ns}}}}}
    kubectl("create", "configmap", "limits", "-n", ns, "--from-literal=max=3")
    api.create_validating_admission_policy(policy)
    api.create_validating_admission_policy_binding(binding)
    try:
        def denied() -> Any:
            r = kubectl("create", "deployment", f"d{uuid.uuid4().hex[:5]}", "-n", ns, "--image=busybox",
                        "--replicas=5", check=False)
            return r if r.returncode != 0 else None
        r = wait_for("the policy", denied, 20.0, 0.1)
        assert f"ValidatingAdmissionPolicy '{pname}' with binding '{pname}' denied request: replicas must be at most 3" \
            in r.stderr
        apps = client.AppsV1Api(api.api_client)
        with pytest.raises(client.ApiException) as e:
            apps.create_namespaced_deployment(ns, {
                "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "big"},
                "spec": {"replicas": 4, "selector": {"matchLabels": {"a": "b"}}, "template": {
                    "metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}})
        assert e.value.status == 403 and json.loads(e.value.body)["reason"] == "Forbidden"
        kubectl("create", "deployment", "small", "-n", ns, "--image=busybox", "--replicas=2")
        got = api.read_validating_admission_policy(pname)
        assert got.spec.validations[0].expression == "object.spec.replicas <= int(params.data.max)"
        bad = {**policy, "metadata": {"name": f"bad-{ns}"},
               "spec": {**policy["spec"], "validations": [{"expression": "object.spec.replicas <="}]}}
        with pytest.raises(client.ApiException) as e:
            api.create_validating_admission_policy(bad)
        assert e.value.status == 422 and "compilation failed" in e.value.body
    finally:
        api.delete_validating_admission_policy_binding(pname)
        api.delete_validating_admission_policy(pname)
