"""Pure pieces of the apiserver core: stored-bytes splicing, URL resolution, name rules, the
graceful-deletion decision, update rules and the Scale view."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controlplane.apiserver.discovery.registry import version_priority
from controlplane.apiserver.endpoints.common import resolve
from controlplane.apiserver.endpoints.read import decode_continue, encode_continue
from controlplane.apiserver.endpoints.subresources import to_scale
from controlplane.apiserver.meta import errors
from controlplane.apiserver.persistence.codec import decode, encode, with_rv
from controlplane.apiserver.strategy.deletion import graceful
from controlplane.apiserver.strategy.generic import name_causes, prepare_update, unchanged
from controlplane.storage.interface import KeyValue
from tests.unit.apiserver_kinds import REGISTRY as REG
from tests.unit.apiserver_kinds import apply_defaults


@pytest.mark.parametrize("obj", [
    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "d"}, "data": {"k": "v"}},
    {"kind": "Pod", "data": 1, "metadata": {"resourceVersion": "7", "name": "x", "labels": {"metadata": "{"}}},
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {}},
], ids=["configmap", "reordered-with-rv", "no-name"])
def test_with_rv_splices_resource_version(obj: dict) -> None:
    stored = encode(obj)
    assert b"resourceVersion" not in stored
    out = json.loads(with_rv(stored, 42))
    assert out["metadata"]["resourceVersion"] == "42"
    expected = json.loads(json.dumps(obj))
    expected.setdefault("metadata", {})["resourceVersion"] = "42"
    expected["metadata"].setdefault("name", "")
    expected.setdefault("apiVersion", "")
    assert out == expected
    assert decode(KeyValue("k", stored, 42, 1)) == out


@pytest.mark.parametrize("prefix,path,expect", [
    ("api", "v1/namespaces", ("namespaces", None, None, "")),
    ("api", "v1/namespaces/default", ("namespaces", None, "default", "")),
    ("api", "v1/namespaces/default/status", ("namespaces", None, "default", "status")),
    ("api", "v1/namespaces/default/configmaps", ("configmaps", "default", None, "")),
    ("api", "v1/namespaces/default/pods/p1/binding", ("pods", "default", "p1", "binding")),
    ("api", "v1/pods", ("pods", None, None, "")),
    ("api", "v1/nodes/n1/status", ("nodes", None, "n1", "status")),
    ("apis", "apps/v1/namespaces/x/deployments/d/scale", ("deployments", "x", "d", "scale")),
], ids=lambda v: v if isinstance(v, str) else None)
def test_resolve(prefix: str, path: str, expect: tuple) -> None:
    t = resolve(REG, prefix, path)
    assert (t.info.plural, t.namespace, t.name, t.subresource) == expect


@pytest.mark.parametrize("prefix,path", [
    ("api", "v1/widgets"), ("apis", "apps/v1/namespaces/x/nodes"), ("api", "v1/namespaces/d/configmaps/c/scale"),
    ("apis", "nope.io/v1/things"), ("api", "v1/namespaces/d/configmaps/a/b/c"),
])
def test_resolve_unknown_is_404(prefix: str, path: str) -> None:
    with pytest.raises(errors.ApiError) as e:
        resolve(REG, prefix, path)
    assert e.value.code == 404


@pytest.mark.parametrize("plural,name,ok", [
    ("configmaps", "a.b-c", True), ("configmaps", "A", False), ("configmaps", "", False),
    ("namespaces", "a.b", False), ("namespaces", "ab-1", True), ("services", "x" * 64, False),
    ("events", "Foo.Bar_1", True), ("events", "a/b", False), ("configmaps", "-a", False),
])
def test_name_rules(plural: str, name: str, ok: bool) -> None:
    info = REG.get("", "v1", plural)
    assert (not name_causes(info.strategy.name_rule, name)) == ok


def _pod(node: str = "", fins: list[str] | None = None, phase: str = "Running") -> dict:
    meta: dict = {"name": "p", "namespace": "d", "resourceVersion": "5"}
    if fins:
        meta["finalizers"] = fins
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 30}, "status": {"phase": phase}}


@pytest.mark.parametrize("obj,grace,policy,gone,grace_left,fins", [
    (_pod(), None, None, True, None, None),
    (_pod("n1"), None, None, False, 30, None),
    (_pod("n1"), 0, None, True, None, None),
    (_pod("n1", phase="Succeeded"), None, None, True, None, None),
    (_pod(fins=["x"]), None, None, False, 0, ["x"]),
    (_pod(), None, "Foreground", False, 0, ["foregroundDeletion"]),
    (_pod(), None, "Orphan", False, 0, ["orphan"]),
], ids=["unbound", "bound-graceful", "bound-grace0", "terminal", "finalizer", "foreground", "orphan"])
def test_graceful_deletion(obj: dict, grace, policy, gone: bool, grace_left, fins) -> None:
    info = REG.get("", "v1", "pods")
    out = graceful(info, obj, grace, policy)
    assert (out is None) == gone
    if out is not None:
        assert out["metadata"]["deletionGracePeriodSeconds"] == grace_left
        assert out["metadata"].get("finalizers") == fins
        assert out["metadata"]["deletionTimestamp"]


def test_update_bumps_generation_on_spec_only_and_keeps_status() -> None:
    info = REG.get("apps", "v1", "deployments")
    old = {"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "d", "namespace": "n", "uid": "u", "generation": 3, "resourceVersion": "9",
                        "creationTimestamp": "t"},
           "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}},
                    "template": {"metadata": {"labels": {"a": "b"}},
                                 "spec": {"containers": [{"name": "c", "image": "busybox"}]}}},
           "status": {"replicas": 1}}
    old = apply_defaults(old, info.gvk)
    relabel = json.loads(json.dumps(old))
    relabel["metadata"]["labels"] = {"x": "y"}
    relabel["status"] = {"replicas": 99}
    out = prepare_update(info, old, relabel, subresource="", strict=False, manager=None)
    assert out["metadata"]["generation"] == 3 and out["status"] == {"replicas": 1}
    scaled = json.loads(json.dumps(old))
    scaled["spec"]["replicas"] = 2
    out = prepare_update(info, old, scaled, subresource="", strict=False, manager=None)
    assert out["metadata"]["generation"] == 4
    status = {"status": {"replicas": 5}, "spec": {"replicas": 7}}
    out = prepare_update(info, old, status, subresource="status", strict=False, manager=None)
    assert out["status"] == {"replicas": 5} and out["spec"]["replicas"] == 1
    assert unchanged(old, prepare_update(info, old, json.loads(json.dumps(old)), subresource="", strict=False, manager=None))


def test_update_with_another_uid_is_refused() -> None:
    """A uid in an update's body is a precondition (as Kubernetes' ValidateObjectMetaUpdate):
    422 when it differs, none needed when absent."""
    info = REG.get("apps", "v1", "controllerrevisions")
    old = {"apiVersion": "apps/v1", "kind": "ControllerRevision", "revision": 1, "data": {"a": 1},
           "metadata": {"name": "r", "namespace": "n", "uid": "u-1", "resourceVersion": "3",
                        "creationTimestamp": "2026-12-07T00:00:00Z"}}
    adopt = json.loads(json.dumps(old))
    adopt["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "s", "uid": "o-1",
                                             "controller": True}]
    assert prepare_update(info, old, adopt, subresource="", strict=False, manager=None)["metadata"]["uid"] == "u-1"
    adopt["metadata"].pop("uid")
    assert prepare_update(info, old, adopt, subresource="", strict=False, manager=None)["metadata"]["uid"] == "u-1"
    adopt["metadata"]["uid"] = "u-2"
    with pytest.raises(errors.ApiError) as e:
        prepare_update(info, old, adopt, subresource="", strict=False, manager=None)
    assert e.value.code == 422 and 'ControllerRevision.apps "r" is invalid: metadata.uid: Invalid value: "u-2": ' \
        'field is immutable' in str(e.value.message)


def test_scale_view_of_a_deployment() -> None:
    info = REG.get("apps", "v1", "deployments")
    obj = {"metadata": {"name": "d", "namespace": "n", "resourceVersion": "3"},
           "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "web"}}}, "status": {"replicas": 2}}
    sc = to_scale(info, obj)
    assert sc["spec"] == {"replicas": 4}
    assert sc["status"] == {"replicas": 2, "selector": "app=web"}
    assert sc["apiVersion"] == "autoscaling/v1"


@pytest.mark.parametrize("versions,want", [
    (["v1beta1", "v1", "v2alpha1"], ["v1", "v1beta1", "v2alpha1"]),
    (["v1", "v2"], ["v2", "v1"]),
])
def test_version_priority(versions: list[str], want: list[str]) -> None:
    assert sorted(versions, key=version_priority) == want


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.text(max_size=12),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
    max_leaves=20)


@settings(max_examples=200, deadline=None)
@given(meta=st.dictionaries(st.text(max_size=10), _json_values, max_size=5),
       rest=st.dictionaries(st.text(max_size=10).filter(lambda k: k not in ("apiVersion", "kind", "metadata")),
                            _json_values, max_size=5),
       rv=st.integers(1, 2**62))
def test_with_rv_matches_a_full_round_trip(meta: dict, rest: dict, rv: int) -> None:
    """Splicing the resourceVersion into stored bytes equals decoding, setting it, re-encoding."""
    obj = {"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "n", **meta}, **rest}
    stored = encode(obj)
    spliced = json.loads(with_rv(stored, rv))
    expected = json.loads(stored)
    expected["metadata"]["resourceVersion"] = str(rv)
    assert spliced == expected


@given(rv=st.integers(1, 2**62), key=st.text(min_size=1, max_size=40))
def test_continue_token_round_trip(rv: int, key: str) -> None:
    assert decode_continue(encode_continue(rv, key)) == (rv, key)
