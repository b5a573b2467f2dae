"""Kubernetes' CEL libraries in the real apiserver, through the real kubectl: a CRD's
``x-kubernetes-validations`` using quantities, URLs, CIDRs and list functions, and a
ValidatingAdmissionPolicy using ``authorizer`` (decided by the apiserver's RBAC for the
impersonated user) and a quantity variable; cel-go's optional types (``self.?spec.x.orValue``,
``object.metadata.?labels``) in a CRD rule and a policy."""

from __future__ import annotations

import json
import uuid

from tests.fixtures.poll import wait_for


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def _apply(kubectl, tmp_path, obj: dict, *args: str, check: bool = True):
    p = tmp_path / f"{uuid.uuid4().hex}.json"
    p.write_text(json.dumps(obj))
    return kubectl("apply", "-f", str(p), *args, check=check)


def test_crd_rules_with_kubernetes_libraries(kubectl, tmp_path) -> None:
    group = f"{_unique('cellib')}.example.com"
    rules = [
        {"rule": "quantity(self.memory).isLessThan(quantity('2Gi'))", "message": "memory must be below 2Gi"},
        {"rule": "isURL(self.endpoint) && url(self.endpoint).getScheme() == 'https'",
         "message": "endpoint must be an https URL"},
        {"rule": "self.allowed.all(c, isCIDR(c) && cidr(c).prefixLength() >= 16)",
         "messageExpression": "'allowed must hold CIDRs of /16 or smaller, got ' + self.allowed.join(', ')"},
        {"rule": "self.zones.isSorted()", "message": "zones must be sorted"},
    ]
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": f"gateways.{group}"},
           "spec": {"group": group, "scope": "Namespaced",
                    "names": {"plural": "gateways", "singular": "gateway", "kind": "Gateway"},
                    "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                        "type": "object", "properties": {"spec": {
                            "type": "object", "x-kubernetes-validations": rules,
                            # bounded, as Kubernetes' cost estimate requires of these rules
                            "properties": {"memory": {"type": "string", "maxLength": 20},
                                           "endpoint": {"type": "string", "maxLength": 200},
                                           "allowed": {"type": "array", "maxItems": 16,
                                                       "items": {"type": "string", "maxLength": 43}},
                                           "zones": {"type": "array", "maxItems": 16,
                                                     "items": {"type": "string", "maxLength": 63}}}}}}}}]}}
    _apply(kubectl, tmp_path, crd)
    ns = _unique("cellib")
    kubectl("create", "namespace", ns)

    def gw(**spec) -> dict:
        base = {"memory": "512Mi", "endpoint": "https://gw.example.com:8443/api", "allowed": ["10.1.0.0/16"],
                "zones": ["a", "b"]}
        return {"apiVersion": f"{group}/v1", "kind": "Gateway", "metadata": {"name": "g1", "namespace": ns},
                "spec": {**base, **spec}}

    def known() -> bool:  # the new kind reaches kubectl's discovery
        return "no matches for kind" not in _apply(kubectl, tmp_path, gw(), check=False).stderr
    wait_for("the Gateway kind", known, 20.0, 0.5)
    assert json.loads(kubectl("get", "gateway", "g1", "-n", ns, "-o", "json").stdout)["spec"]["memory"] == "512Mi"
    for spec, message in [({"memory": "3Gi"}, "memory must be below 2Gi"),
                          ({"endpoint": "http://gw.example.com/"}, "endpoint must be an https URL"),
                          ({"endpoint": "../relative"}, "endpoint must be an https URL"),
                          ({"allowed": ["10.0.0.0/8", "10.2.0.0/16"]},
                           "allowed must hold CIDRs of /16 or smaller, got 10.0.0.0/8, 10.2.0.0/16"),
                          ({"zones": ["b", "a"]}, "zones must be sorted")]:
        res = _apply(kubectl, tmp_path, gw(**spec), check=False)
        assert res.returncode != 0
        assert f'The Gateway "g1" is invalid: spec: Invalid value: "object": {message}' in res.stderr, res.stderr
    _apply(kubectl, tmp_path, gw(memory="1536Mi", zones=["a", "c"]))
    kubectl("delete", "namespace", ns, "--wait=false")
    kubectl("delete", "crd", f"gateways.{group}", "--wait=false")


def test_policy_with_authorizer_and_quantities(kubectl, tmp_path) -> None:
    """Only users who may list Secrets in the namespace may create a ConfigMap labelled
    ``tier: privileged``; no ConfigMap may declare a ``size`` of 1Gi or more."""
    ns = _unique("celauthz")
    kubectl("create", "namespace", ns)
    kubectl("label", "namespace", ns, f"celauthz={ns}")
    kubectl("create", "role", "cm-writer", "-n", ns, "--verb=create,get,list", "--resource=configmaps")
    kubectl("create", "rolebinding", "cm-writer", "-n", ns, "--role=cm-writer", "--user=jane", "--user=joe")
    kubectl("create", "role", "secret-reader", "-n", ns, "--verb=list", "--resource=secrets")
    kubectl("create", "rolebinding", "secret-reader", "-n", ns, "--role=secret-reader", "--user=joe")
    pname = f"privileged-cm-{ns}"
    policy = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
              "metadata": {"name": pname},
              "spec": {"failurePolicy": "Fail",
                       "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                                                              "operations": ["CREATE", "UPDATE"],
                                                              "resources": ["configmaps"]}]},
                       "variables": [{"name": "size", "expression":
                                      "has(object.data) && 'size' in object.data ? quantity(object.data.size) "
                                      ": quantity('0')"}],
                       "validations": [
                           {"expression": "!has(object.metadata.labels) || !('tier' in object.metadata.labels) || "
                                          "object.metadata.labels.tier != 'privileged' || "
                                          "authorizer.group('').resource('secrets')"
                                          ".namespace(object.metadata.namespace).check('list').allowed()",
                            "messageExpression": "'user ' + request.userInfo.username + "
                                                 "' may not create privileged ConfigMaps'",
                            "reason": "Forbidden"},
                           {"expression": "variables.size.isLessThan(quantity('1Gi'))",
                            "message": "size must be below 1Gi"},
                           {"expression": "authorizer.requestResource.check('create').allowed()",
                            "message": "the request's own resource is checked for its user"}]}}
    binding = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
               "metadata": {"name": pname},
               "spec": {"policyName": pname, "validationActions": ["Deny"],
                        "matchResources": {"namespaceSelector": {"matchLabels": {"celauthz": ns}}}}}
    _apply(kubectl, tmp_path, policy)
    _apply(kubectl, tmp_path, binding)
    try:
        def denied() -> object:
            r = kubectl("create", "configmap", _unique("probe"), "-n", ns, "--from-literal=size=2Gi", check=False)
            return r if r.returncode != 0 else None
        r = wait_for("the policy", denied, 20.0, 0.2)
        assert "size must be below 1Gi" in r.stderr, r.stderr
        priv = {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "priv", "namespace": ns, "labels": {"tier": "privileged"}},
                "data": {"size": "512Mi"}}
        res = _apply(kubectl, tmp_path, priv, "--as=jane", check=False)
        assert res.returncode != 0
        assert (f"ValidatingAdmissionPolicy '{pname}' with binding '{pname}' denied request: "
                "user jane may not create privileged ConfigMaps") in res.stderr, res.stderr
        _apply(kubectl, tmp_path, priv, "--as=joe")  # joe may list secrets there
        plain = {**priv, "metadata": {"name": "plain", "namespace": ns}}
        _apply(kubectl, tmp_path, plain, "--as=jane")
        names = kubectl("get", "configmaps", "-n", ns, "-o", "name").stdout.split()
        assert "configmap/priv" in names and "configmap/plain" in names
    finally:
        kubectl("delete", "validatingadmissionpolicybinding", pname, "--wait=false", check=False)
        kubectl("delete", "validatingadmissionpolicy", pname, "--wait=false", check=False)
        kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_crd_rules_with_optional_types(kubectl, tmp_path) -> None:
    """Kubernetes 1.32 compiles CRD rules with cel-go's optional types: the CRD is accepted and
    its rules hold with the field absent (the default) and present."""
    group = f"{_unique('celopt')}.example.com"
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": f"pools.{group}"},
           "spec": {"group": group, "scope": "Namespaced",
                    "names": {"plural": "pools", "singular": "pool", "kind": "Pool"},
                    "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                        "type": "object",
                        "x-kubernetes-validations": [
                            {"rule": "self.?spec.replicas.orValue(1) <= 5", "message": "at most 5 replicas"}],
                        "properties": {"spec": {
                            "type": "object",
                            "x-kubernetes-validations": [
                                {"rule": "self.?limits.max.orValue(10) >= self.?limits.min.orValue(0)",
                                 "messageExpression": "'min ' + string(self.?limits.min.orValue(0)) + "
                                                      "' is above max ' + string(self.?limits.max.orValue(10))"}],
                            "properties": {"replicas": {"type": "integer"},
                                           "limits": {"type": "object", "properties": {
                                               "min": {"type": "integer"}, "max": {"type": "integer"}}}}}}}}}]}}
    _apply(kubectl, tmp_path, crd)
    ns = _unique("celopt")
    kubectl("create", "namespace", ns)

    def pool(name: str, spec: dict | None) -> dict:
        obj = {"apiVersion": f"{group}/v1", "kind": "Pool", "metadata": {"name": name, "namespace": ns}}
        return obj if spec is None else {**obj, "spec": spec}

    def known() -> bool:
        return "no matches for kind" not in _apply(kubectl, tmp_path, pool("bare", None), check=False).stderr
    wait_for("the Pool kind", known, 20.0, 0.5)
    _apply(kubectl, tmp_path, pool("small", {"replicas": 3, "limits": {"min": 2}}))
    for name, spec, message in [
            ("big", {"replicas": 7}, '<nil>: Invalid value: "object": at most 5 replicas'),
            ("tight", {"limits": {"min": 11}}, 'spec: Invalid value: "object": min 11 is above max 10'),
            ("low", {"limits": {"max": -1}}, 'spec: Invalid value: "object": min 0 is above max -1')]:
        res = _apply(kubectl, tmp_path, pool(name, spec), check=False)
        assert res.returncode != 0
        assert f'The Pool "{name}" is invalid: {message}' in res.stderr, res.stderr
    names = kubectl("get", "pools", "-n", ns, "-o", "name").stdout.split()
    assert sorted(names) == [f"pool.{group}/bare", f"pool.{group}/small"]
    kubectl("delete", "namespace", ns, "--wait=false")
    kubectl("delete", "crd", f"pools.{group}", "--wait=false")


def test_policy_with_optional_types(kubectl, tmp_path) -> None:
    """A ValidatingAdmissionPolicy reading labels and annotations that may be absent through
    ``object.metadata.?labels`` and an optional variable."""
    ns = _unique("celoptvap")
    kubectl("create", "namespace", ns)
    kubectl("label", "namespace", ns, f"celoptvap={ns}")
    pname = f"team-label-{ns}"
    policy = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
              "metadata": {"name": pname},
              "spec": {"failurePolicy": "Fail",
                       "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                                                              "operations": ["CREATE", "UPDATE"],
                                                              "resources": ["configmaps"]}]},
                       "matchConditions": [{"name": "not-the-root-ca",  # published in every namespace
                                            "expression": "object.metadata.name != 'kube-root-ca.crt'"}],
                       "variables": [{"name": "owner",
                                      "expression": "object.metadata.?annotations[?'example.com/owner']"}],
                       "validations": [
                           {"expression": "object.metadata.?labels.orValue({}).exists(k, k == 'team')",
                            "message": "a team label is required"},
                           {"expression": "!variables.owner.hasValue() || variables.owner.value().startsWith('team-')",
                            "messageExpression": "'owner ' + variables.owner.orValue('') + ' is not a team'"}]}}
    binding = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
               "metadata": {"name": pname},
               "spec": {"policyName": pname, "validationActions": ["Deny"],
                        "matchResources": {"namespaceSelector": {"matchLabels": {"celoptvap": ns}}}}}
    _apply(kubectl, tmp_path, policy)
    _apply(kubectl, tmp_path, binding)
    try:
        def denied() -> object:  # no labels at all: the policy is in force once this is denied
            r = kubectl("create", "configmap", _unique("probe"), "-n", ns, check=False)
            return r if r.returncode != 0 else None
        r = wait_for("the policy", denied, 20.0, 0.2)
        assert (f"ValidatingAdmissionPolicy '{pname}' with binding '{pname}' denied request: "
                "a team label is required") in r.stderr, r.stderr

        def cm(name: str, labels: dict, annotations: dict | None = None) -> dict:
            meta = {"name": name, "namespace": ns, "labels": labels}
            return {"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": meta if annotations is None else {**meta, "annotations": annotations}}
        res = _apply(kubectl, tmp_path, cm("other", {"app": "x"}), check=False)
        assert "a team label is required" in res.stderr, res.stderr
        res = _apply(kubectl, tmp_path, cm("badowner", {"team": "a"}, {"example.com/owner": "bob"}), check=False)
        assert "owner bob is not a team" in res.stderr, res.stderr
        _apply(kubectl, tmp_path, cm("ok", {"team": "a"}))
        _apply(kubectl, tmp_path, cm("owned", {"team": "a"}, {"example.com/owner": "team-a"}))
        names = kubectl("get", "configmaps", "-n", ns, "-o", "name").stdout.split()
        assert "configmap/ok" in names and "configmap/owned" in names and "configmap/badowner" not in names
    finally:
        kubectl("delete", "validatingadmissionpolicybinding", pname, "--wait=false", check=False)
        kubectl("delete", "validatingadmissionpolicy", pname, "--wait=false", check=False)
        kubectl("delete", "namespace", ns, "--wait=false", check=False)
