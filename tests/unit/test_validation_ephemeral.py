"""Ephemeral containers (``kubectl debug``): Kubernetes' ``validateEphemeralContainers``,
``ValidatePodEphemeralContainersUpdate`` and the create/update rules around them, through the
pod strategy as the apiserver runs them (``generic.prepare_update`` with the
``ephemeralcontainers`` subresource), with Kubernetes' causes."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from controlplane.apiserver.meta.errors import ApiError
from controlplane.apiserver.strategy import generic
from controlplane.apiserver.strategy.builtins import builtin_resources

PODS = next(r for r in builtin_resources() if r.plural == "pods")
FORBIDDEN = "Forbidden: cannot be set for an Ephemeral Container"


def _pod(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"containers": [{"name": "app", "image": "busybox"}],
                            "initContainers": [{"name": "setup", "image": "busybox"}]}
    base.update(spec)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"}, "spec": base}


def _stored(**spec: Any) -> dict[str, Any]:
    """A pod as the store holds it (created, defaulted)."""
    obj = generic.prepare_create(PODS, _pod(), strict=False, manager=None)
    obj["metadata"]["resourceVersion"] = "5"
    obj["spec"].update(copy.deepcopy(spec))
    return PODS.strategy.default(obj)


def _ec(name: str = "debugger", **kw: Any) -> dict[str, Any]:
    return {"name": name, "image": "busybox", **kw}


def _causes(e: ApiError) -> list[tuple[str, str, str]]:
    return [(c["reason"], c["field"], c["message"]) for c in e.details["causes"]]


def _update(old: dict[str, Any], ephemeral: list[dict[str, Any]], **meta: Any) -> dict[str, Any]:
    new = copy.deepcopy(old)
    new["spec"]["ephemeralContainers"] = ephemeral
    new["metadata"].update(meta)
    return generic.prepare_update(PODS, copy.deepcopy(old), new, subresource="ephemeralcontainers",
                                  strict=False, manager=None)


ADD_CASES: list[tuple[str, list[dict[str, Any]], list[tuple[str, str, str]]]] = [
    ("valid", [_ec(stdin=True, tty=True, targetContainerName="app", command=["sh"], env=[{"name": "A", "value": "1"}],
                   securityContext={"privileged": True}, resources={})], []),
    ("target is an init container", [_ec(targetContainerName="setup")], []),
    ("unknown target", [_ec(targetContainerName="nope")],
     [("FieldValueNotFound", "spec.ephemeralContainers[0].targetContainerName", 'Not found: "nope"')]),
    ("name of a container", [_ec("app")],
     [("FieldValueDuplicate", "spec.ephemeralContainers[0].name", 'Duplicate value: "app"')]),
    ("name of an init container", [_ec("setup")],
     [("FieldValueDuplicate", "spec.ephemeralContainers[0].name", 'Duplicate value: "setup"')]),
    ("two with one name", [_ec("d"), _ec("d")],
     [("FieldValueDuplicate", "spec.ephemeralContainers[1].name", 'Duplicate value: "d"')]),
    ("ports", [_ec(ports=[{"containerPort": 80}])],
     [("FieldValueForbidden", "spec.ephemeralContainers[0].ports", FORBIDDEN)]),
    ("resources", [_ec(resources={"limits": {"cpu": "1"}})],
     [("FieldValueForbidden", "spec.ephemeralContainers[0].resources", FORBIDDEN)]),
    ("probes and lifecycle", [_ec(livenessProbe={"exec": {"command": ["true"]}},
                                  readinessProbe={"exec": {"command": ["true"]}},
                                  startupProbe={"exec": {"command": ["true"]}},
                                  lifecycle={"preStop": {"exec": {"command": ["true"]}}})],
     [("FieldValueForbidden", f"spec.ephemeralContainers[0].{f}", FORBIDDEN)
      for f in ("livenessProbe", "readinessProbe", "startupProbe", "lifecycle")]),
    ("restartPolicy", [_ec(restartPolicy="Always")],
     [("FieldValueForbidden", "spec.ephemeralContainers[0].restartPolicy", FORBIDDEN)]),
    ("no image", [{"name": "d"}],
     [("FieldValueRequired", "spec.ephemeralContainers[0].image", "Required value")]),
    ("bad name", [_ec("Debug_1")],
     [("FieldValueInvalid", "spec.ephemeralContainers[0].name",
       "Invalid value: \"Debug_1\": a lowercase RFC 1123 label must consist of lower case alphanumeric "
       "characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or "
       "'123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")]),
    ("subPath mount", [_ec(volumeMounts=[{"name": "v", "mountPath": "/v", "subPath": "x"}])],
     [("FieldValueNotFound", "spec.ephemeralContainers[0].volumeMounts[0].name", 'Not found: "v"'),
      ("FieldValueForbidden", "spec.ephemeralContainers[0].volumeMounts[0].subPath", FORBIDDEN)]),
]


@pytest.mark.parametrize("ephemeral,want", [c[1:] for c in ADD_CASES], ids=[c[0] for c in ADD_CASES])
def test_adding_ephemeral_containers(ephemeral: list[dict[str, Any]], want: list[tuple[str, str, str]]) -> None:
    old = _stored()
    if not want:
        new = _update(old, ephemeral)
        assert [c["name"] for c in new["spec"]["ephemeralContainers"]] == [c["name"] for c in ephemeral]
        assert new["spec"]["ephemeralContainers"][0]["terminationMessagePolicy"] == "File"  # defaulted
        return
    with pytest.raises(ApiError) as e:
        _update(old, ephemeral)
    assert e.value.code == 422
    assert _causes(e.value) == want
    assert e.value.message.startswith('Pod "p" is invalid: ')


def _existing() -> dict[str, Any]:
    return _stored(ephemeralContainers=[_ec("one", command=["sh"]), _ec("two")])


CHANGE_CASES: list[tuple[str, Any, list[tuple[str, str]]]] = [
    ("add a third", lambda ecs: ecs + [_ec("three")], []),
    ("reorder", lambda ecs: list(reversed(ecs)), []),
    ("remove one", lambda ecs: ecs[1:],
     [("spec.ephemeralContainers", 'Forbidden: existing ephemeral containers "one" may not be removed\n')]),
    ("remove all", lambda ecs: [],
     [("spec.ephemeralContainers", 'Forbidden: existing ephemeral containers "one" may not be removed\n'),
      ("spec.ephemeralContainers", 'Forbidden: existing ephemeral containers "two" may not be removed\n')]),
    ("change the image", lambda ecs: [{**ecs[0], "image": "other"}, ecs[1]],
     [("spec.ephemeralContainers",
       'Forbidden: existing ephemeral containers "one" may not be changed\n  image: "busybox" -> "other"')]),
]


@pytest.mark.parametrize("change,want", [c[1:] for c in CHANGE_CASES], ids=[c[0] for c in CHANGE_CASES])
def test_existing_ephemeral_containers_may_only_be_kept(change: Any, want: list[tuple[str, str]]) -> None:
    old = _existing()
    ecs = change(copy.deepcopy(old["spec"]["ephemeralContainers"]))
    if not want:
        new = _update(old, ecs)
        assert {c["name"] for c in new["spec"]["ephemeralContainers"]} == {c["name"] for c in ecs}
        return
    with pytest.raises(ApiError) as e:
        _update(old, ecs)
    assert [(c[1], c[2]) for c in _causes(e.value)] == want
    assert all(c[0] == "FieldValueForbidden" for c in _causes(e.value))


def test_the_subresource_changes_nothing_but_ephemeral_containers() -> None:
    old = _stored()
    new = copy.deepcopy(old)
    new["spec"]["ephemeralContainers"] = [_ec()]
    new["spec"]["containers"][0]["image"] = "changed"
    new["spec"]["activeDeadlineSeconds"] = 5
    new["metadata"]["labels"] = {"a": "b"}
    new["status"] = {"phase": "Running"}
    out = generic.prepare_update(PODS, copy.deepcopy(old), new, subresource="ephemeralcontainers",
                                 strict=False, manager=None)
    assert out["spec"]["containers"] == old["spec"]["containers"]
    assert "activeDeadlineSeconds" not in out["spec"]
    assert "labels" not in out["metadata"]
    assert out["status"] == old["status"]
    assert [c["name"] for c in out["spec"]["ephemeralContainers"]] == ["debugger"]


def test_static_pods_refuse_ephemeral_containers() -> None:
    old = _stored()
    old["metadata"]["annotations"] = {"kubernetes.io/config.mirror": "x"}
    with pytest.raises(ApiError) as e:
        _update(old, [_ec()])
    assert _causes(e.value) == [("FieldValueForbidden", "", "Forbidden: static pods do not support ephemeral containers")]


def test_create_with_ephemeral_containers_is_forbidden() -> None:
    with pytest.raises(ApiError) as e:
        generic.prepare_create(PODS, _pod(ephemeralContainers=[_ec()]), strict=False, manager=None)
    assert e.value.code == 422
    assert _causes(e.value) == [("FieldValueForbidden", "spec.ephemeralContainers", "Forbidden: cannot be set on create")]


def test_a_plain_update_may_not_change_ephemeral_containers() -> None:
    old = _stored(ephemeralContainers=[_ec()])
    for ecs in ([], [_ec(), _ec("more")]):
        new = copy.deepcopy(old)
        new["spec"]["ephemeralContainers"] = ecs
        with pytest.raises(ApiError) as e:
            generic.prepare_update(PODS, copy.deepcopy(old), new, subresource="", strict=False, manager=None)
        assert [c[:2] for c in _causes(e.value)] == [("FieldValueForbidden", "spec")]
    same = copy.deepcopy(old)  # an update that keeps them is fine
    same["metadata"]["labels"] = {"x": "y"}
    generic.prepare_update(PODS, copy.deepcopy(old), same, subresource="", strict=False, manager=None)


def test_pod_templates_may_not_have_ephemeral_containers() -> None:
    deploy = next(r for r in builtin_resources() if r.plural == "deployments")
    obj = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "default"},
           "spec": {"selector": {"matchLabels": {"a": "b"}},
                    "template": {"metadata": {"labels": {"a": "b"}},
                                 "spec": {"containers": [{"name": "c", "image": "i"}],
                                          "ephemeralContainers": [_ec()]}}}}
    with pytest.raises(ApiError) as e:
        generic.prepare_create(deploy, obj, strict=False, manager=None)
    assert ("FieldValueForbidden", "spec.template.spec.ephemeralContainers",
            "Forbidden: ephemeral containers not allowed in pod template") in _causes(e.value)
