"""Leaving other field managers' fields alone (controlplane/gitops/fieldsets.py): which
fields are removed from the object a sync applies, table-driven."""

from __future__ import annotations

import copy

import pytest

from controlplane.gitops.api import DEFAULT_OVERRIDE_MANAGERS
from controlplane.gitops.fieldsets import manager_matches, strip_foreign

OURS = "gitops-controller"


def dep(replicas=2, image="busybox:1", env=None) -> dict:
    c = {"name": "main", "image": image}
    if env is not None:
        c["env"] = env
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"a": "b"}},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [c]}}}}


def mf(manager: str, fields: dict, operation: str = "Update", subresource: str | None = None) -> dict:
    e = {"manager": manager, "operation": operation, "fieldsType": "FieldsV1", "fieldsV1": fields}
    if subresource:
        e["subresource"] = subresource
    return e


def live(*entries: dict) -> dict:
    return {"metadata": {"managedFields": list(entries)}}


OWN_ALL = mf(OURS, {"f:spec": {"f:template": {"f:spec": {"f:containers": {'k:{"name":"main"}': {
    ".": {}, "f:name": {}, "f:image": {}}}}}}}, "Apply")
# an Update moves ownership of what it changed: we keep the item, the operator owns its image
OWN_NAME = mf(OURS, {"f:spec": {"f:template": {"f:spec": {"f:containers": {'k:{"name":"main"}': {
    ".": {}, "f:name": {}}}}}}}, "Apply")
REPLICAS = {"f:spec": {"f:replicas": {}}}
IMAGE = {"f:spec": {"f:template": {"f:spec": {"f:containers": {'k:{"name":"main"}': {"f:image": {}}}}}}}

CASES = [
    ("hpa via /scale keeps replicas", live(OWN_ALL, mf("horizontal-pod-autoscaler", REPLICAS, subresource="scale")),
     dep(), [".spec.replicas (horizontal-pod-autoscaler)"], lambda o: "replicas" not in o["spec"]),
    ("kubectl edit is drift: nothing removed", live(OWN_ALL, mf("kubectl-edit", IMAGE)), dep(), [],
     lambda o: o["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1"),
    ("kubectl scale is drift too", live(OWN_ALL, mf("kubectl-scale", REPLICAS, subresource="scale")), dep(), [],
     lambda o: o["spec"]["replicas"] == 2),
    ("a field we also own stays ours", live(mf(OURS, REPLICAS, "Apply"), mf("other-applier", REPLICAS, "Apply")),
     dep(), [], lambda o: o["spec"]["replicas"] == 2),
    ("a foreign controller's image in a keyed list item", live(OWN_NAME, mf("operator", IMAGE)),
     dep(), ['.spec.template.spec.containers[{"name":"main"}].image (operator)'],
     lambda o: o["spec"]["template"]["spec"]["containers"] == [{"name": "main"}]),
    ("status managers are ignored", live(mf("ctrl", {"f:spec": {"f:replicas": {}}}, subresource="status")), dep(), [],
     lambda o: o["spec"]["replicas"] == 2),
    ("set-list value", live(mf("injector", {"f:spec": {"f:finalizers": {'v:"x"': {}}}})),
     {"spec": {"finalizers": ["x", "y"]}}, ['.spec.finalizers["x"] (injector)'], lambda o: o["spec"]["finalizers"] == ["y"]),
    ("emptied maps are dropped", live(mf("labeler", {"f:metadata": {"f:labels": {"f:a": {}}}})), dep(),
     [".metadata.labels.a (labeler)"], lambda o: "labels" not in o["metadata"]),
    ("fields the object does not set are ignored", live(mf("injector", {"f:spec": {"f:paused": {}}})), dep(), [],
     lambda o: o == dep()),
    ("no live object", None, dep(), [], lambda o: o == dep()),
]


@pytest.mark.parametrize("name,live_obj,obj,removed,check", CASES, ids=[c[0] for c in CASES])
def test_strip_foreign(name, live_obj, obj, removed, check):
    o = copy.deepcopy(obj)
    assert strip_foreign(o, live_obj, OURS, DEFAULT_OVERRIDE_MANAGERS) == removed
    assert check(o), o


def test_list_map_keys_are_never_removed():
    o = dep()
    tree = {"f:spec": {"f:template": {"f:spec": {"f:containers": {'k:{"name":"main"}': {".": {}, "f:name": {}, "f:image": {}}}}}}}
    strip_foreign(o, live(mf("operator", tree)), OURS, DEFAULT_OVERRIDE_MANAGERS)
    assert o["spec"]["template"]["spec"]["containers"] == [{"name": "main"}]


@pytest.mark.parametrize("manager,overridden", [("kubectl", True), ("kubectl-edit", True), ("kubectl-client-side-apply", True),
                                                ("before-first-apply", True), ("horizontal-pod-autoscaler", False),
                                                ("kube-controller-manager", False), ("kubectlish", False)])
def test_default_override_managers(manager, overridden):
    assert manager_matches(manager, DEFAULT_OVERRIDE_MANAGERS) is overridden
