"""Everyday custom-resource use through the real kubectl, as on Kubernetes 1.32: a deprecated
version (its Warning, its own schema), ``--validate=ignore`` (no unknown-field warning),
``selectableFields`` (``--field-selector``; other labels are 400), validation ratcheting (a schema
tightened under existing objects), a ValidatingAdmissionPolicy's
denial as kubectl prints it, and deleting a CRD whose custom resource has a finalizer (the
``Terminating`` condition, creates refused with 405)."""

from __future__ import annotations

import json
import uuid

from tests.fixtures.poll import wait_for


def _apply(kubectl, tmp_path, obj: dict, *args: str, check: bool = True):
    p = tmp_path / f"{uuid.uuid4().hex}.json"
    p.write_text(json.dumps(obj))
    return kubectl("apply", "-f", str(p), *args, check=check)


def _crd(group: str) -> dict:
    spec_v1 = {"type": "object", "properties": {"color": {"type": "string"}, "replicas": {"type": "integer"}}}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"widgets.{group}"},
            "spec": {"group": group, "scope": "Namespaced",
                     "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                     "versions": [
                         {"name": "v1alpha1", "served": True, "storage": False, "deprecated": True,
                          "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {
                              "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}}},
                         {"name": "v1", "served": True, "storage": True,
                          "selectableFields": [{"jsonPath": ".spec.color"}],
                          "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": spec_v1}}}}]}}


def test_custom_resources_as_kubectl_users_meet_them(kubectl, tmp_path) -> None:
    group = f"everyday-{uuid.uuid4().hex[:6]}.example.com"
    _apply(kubectl, tmp_path, _crd(group))
    ns = f"crd-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", ns)

    def widget(name: str, version: str = "v1", **spec) -> dict:
        return {"apiVersion": f"{group}/{version}", "kind": "Widget", "metadata": {"name": name, "namespace": ns},
                "spec": spec}

    # the deprecated version: its own schema (spec keeps unknown fields) and the default Warning
    def created() -> object:
        r = _apply(kubectl, tmp_path, widget("old", "v1alpha1", color="red", extra=1), check=False)
        return r if r.returncode == 0 else None
    r = wait_for("the Widget kind", created, 20.0, 0.3)
    assert f"Warning: {group}/v1alpha1 Widget is deprecated; use {group}/v1 Widget" in r.stderr, r.stderr

    # --validate=ignore drops unknown fields silently; the default (strict) refuses them
    r = _apply(kubectl, tmp_path, widget("blue", color="blue", nope=1), "--validate=ignore")
    assert "unknown field" not in r.stderr, r.stderr
    r = _apply(kubectl, tmp_path, widget("red", color="red", nope=1), check=False)
    assert 'strict decoding error: unknown field "spec.nope"' in r.stderr, r.stderr
    _apply(kubectl, tmp_path, widget("red", color="red"))

    # selectableFields
    names = kubectl("get", f"widgets.v1.{group}", "-n", ns, "--field-selector", "spec.color=blue",
                    "-o", "name").stdout.split()
    assert names == [f"widget.{group}/blue"], names
    names = kubectl("get", f"widgets.v1.{group}", "-n", ns, "--field-selector", "spec.color!=blue",
                    "-o", "name").stdout.split()
    assert sorted(names) == [f"widget.{group}/old", f"widget.{group}/red"], names
    r = kubectl("get", f"widgets.v1.{group}", "-n", ns, "--field-selector", "spec.size=1", check=False)
    assert r.returncode != 0 and "field label not supported: spec.size" in r.stderr, r.stderr

    # validation ratcheting: the schema tightened under "blue" (color maxLength 3) still lets
    # updates that leave the color alone through; changing it to another long color is refused
    tight = _crd(group)
    tight["spec"]["versions"][1]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["color"][
        "maxLength"] = 3
    _apply(kubectl, tmp_path, tight)

    def tightened() -> object:
        res = _apply(kubectl, tmp_path, widget("yellow", color="yellow"), check=False)
        return res if res.returncode != 0 else None
    r = wait_for("the tightened schema", tightened, 20.0, 0.2)
    assert "spec.color: Too long: may not be more than 3 bytes" in r.stderr, r.stderr
    kubectl("label", f"widgets.v1.{group}", "blue", "-n", ns, "tier=1")
    kubectl("patch", f"widgets.v1.{group}", "blue", "-n", ns, "--type=merge", "-p", '{"spec":{"replicas":2}}')
    r = kubectl("patch", f"widgets.v1.{group}", "blue", "-n", ns, "--type=merge", "-p", '{"spec":{"color":"green"}}',
                check=False)
    assert r.returncode != 0 and "spec.color: Too long: may not be more than 3 bytes" in r.stderr, r.stderr

    # a ValidatingAdmissionPolicy's denial (reason Invalid) as kubectl prints it
    pname = f"max-replicas-{ns}"
    _apply(kubectl, tmp_path, {
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": pname},
        "spec": {"failurePolicy": "Fail",
                 "matchConstraints": {"resourceRules": [{"apiGroups": [group], "apiVersions": ["*"],
                                                        "operations": ["CREATE", "UPDATE"],
                                                        "resources": ["widgets"]}]},
                 "validations": [{"expression": "!has(object.spec.replicas) || object.spec.replicas <= 3",
                                  "message": "at most 3 replicas"}]}})
    _apply(kubectl, tmp_path, {
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": pname},
        "spec": {"policyName": pname, "validationActions": ["Deny"],
                 "matchResources": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}}}})
    try:
        def denied() -> object:
            res = _apply(kubectl, tmp_path, widget("big", color="red", replicas=5), check=False)
            return res if res.returncode != 0 else None
        r = wait_for("the policy", denied, 20.0, 0.2)
        assert (f'The widgets "big" is invalid: : ValidatingAdmissionPolicy \'{pname}\' with binding \'{pname}\' '
                "denied request: at most 3 replicas") in r.stderr, r.stderr
    finally:
        kubectl("delete", "validatingadmissionpolicybinding", pname, "--wait=false", check=False)
        kubectl("delete", "validatingadmissionpolicy", pname, "--wait=false", check=False)

    # deleting the CRD while a finalizer holds one of its custom resources
    kubectl("patch", f"widgets.v1.{group}", "red", "-n", ns, "--type=merge",
            "-p", '{"metadata":{"finalizers":["example.com/hold"]}}')
    kubectl("delete", "crd", f"widgets.{group}", "--wait=false")

    def terminating() -> object:
        crd = json.loads(kubectl("get", "crd", f"widgets.{group}", "-o", "json").stdout)
        return next((c for c in crd["status"].get("conditions") or [] if c["type"] == "Terminating"), None)
    cond = wait_for("the Terminating condition", terminating, 20.0, 0.2)
    assert (cond["status"], cond["reason"], cond["message"]) == (
        "True", "InstanceDeletionInProgress", "CustomResource deletion is in progress"), cond
    r = kubectl("create", "-f", "-", input=json.dumps(widget("late", color="red")), check=False)
    assert "create not allowed while custom resource definition is terminating" in r.stderr, r.stderr
    assert "MethodNotAllowed" in r.stderr, r.stderr
    kubectl("patch", f"widgets.v1.{group}", "red", "-n", ns, "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    wait_for("the CRD to go", lambda: kubectl("get", "crd", f"widgets.{group}", check=False).returncode != 0,
             20.0, 0.2)
    kubectl("delete", "namespace", ns, "--wait=false")


def test_crd_rule_cost_estimated_when_written(kubectl, tmp_path) -> None:
    """kube-apiserver estimates a rule's worst-case cost when the CRD is written: a nested
    ``all`` over lists without ``maxItems`` / ``maxLength`` is refused with its message; the same
    rule over bounded lists is accepted."""
    group = f"cost-{uuid.uuid4().hex[:6]}.example.com"

    def crd(bounded: bool) -> dict:
        member: dict = {"type": "string", **({"maxLength": 63} if bounded else {})}
        members: dict = {"type": "array", "items": member, **({"maxItems": 10} if bounded else {})}
        groups = {"type": "array", **({"maxItems": 10} if bounded else {}),
                  "items": {"type": "object", "properties": {"members": members}},
                  "x-kubernetes-validations": [{"rule": "self.all(g, g.members.all(m, m.startsWith('team-')))"}]}
        return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                "metadata": {"name": f"teams.{group}"},
                "spec": {"group": group, "scope": "Namespaced",
                         "names": {"plural": "teams", "singular": "team", "kind": "Team"},
                         "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                             "type": "object", "properties": {"spec": {
                                 "type": "object", "properties": {"groups": groups}}}}}}]}}

    r = _apply(kubectl, tmp_path, crd(bounded=False), check=False)
    assert r.returncode != 0
    assert ("spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[groups]"
            ".x-kubernetes-validations[0].rule: Forbidden: estimated rule cost exceeds budget by factor of "
            "more than 100x (try simplifying the rule, or adding maxItems, maxProperties, and maxLength where "
            "arrays, maps, and strings are declared)") in r.stderr, r.stderr
    _apply(kubectl, tmp_path, crd(bounded=True))
    kubectl("delete", "crd", f"teams.{group}", "--wait=false")
