"""Strategic merge patch, table-driven: every directive and strategy, the patches kubectl 1.32
sends for client-side apply, and Hypothesis properties over generated kubectl-style patches."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controlplane.apiserver.meta.errors import ApiError
from controlplane.apiserver.patch import apply_patch
from controlplane.apiserver.patch.schema import Node, builtin_node

SMP = "application/strategic-merge-patch+json"
DEPLOY = ("apps", "v1", "Deployment")
POD = ("", "v1", "Pod")


def smp(live: dict[str, Any], patch: dict[str, Any], gvk: tuple[str, str, str] = POD) -> dict[str, Any]:
    before = copy.deepcopy(live)
    out = apply_patch(live, json.dumps(patch).encode(), SMP, gvk, is_custom=False)
    assert live == before, "live must not be mutated"
    return out


def pod(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec}


C = [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]

CASES: list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]] = [
    # (id, live, patch, expected)
    ("map-merge-and-null-delete",
     {"metadata": {"name": "p", "labels": {"x": "1", "y": "2"}}},
     {"metadata": {"labels": {"x": None, "z": "3"}}},
     {"metadata": {"name": "p", "labels": {"y": "2", "z": "3"}}}),
    ("containers-merge-by-name",
     pod(containers=copy.deepcopy(C)),
     {"spec": {"containers": [{"name": "b", "image": "b:2"}]}},
     pod(containers=[{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:2"}])),
    ("containers-new-item-goes-first-without-order",
     pod(containers=copy.deepcopy(C)),
     {"spec": {"containers": [{"name": "c", "image": "c:1"}]}},
     pod(containers=[{"name": "c", "image": "c:1"}, *C])),
    ("containers-set-element-order-appends",
     pod(containers=copy.deepcopy(C)),
     {"spec": {"$setElementOrder/containers": [{"name": "a"}, {"name": "b"}, {"name": "c"}],
               "containers": [{"name": "c", "image": "c:1"}]}},
     pod(containers=[*C, {"name": "c", "image": "c:1"}])),
    ("set-element-order-reorders",
     pod(containers=copy.deepcopy(C)),
     {"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}]}},
     pod(containers=[C[1], C[0]])),
    ("list-item-patch-delete",
     pod(containers=copy.deepcopy(C)),
     {"spec": {"containers": [{"name": "a", "$patch": "delete"}]}},
     pod(containers=[C[1]])),
    ("list-patch-replace",
     pod(containers=copy.deepcopy(C)),
     {"spec": {"containers": [{"name": "z", "image": "z"}, {"$patch": "replace"}]}},
     pod(containers=[{"name": "z", "image": "z"}])),
    ("map-patch-replace",
     pod(containers=copy.deepcopy(C), nodeSelector={"a": "1", "b": "2"}),
     {"spec": {"nodeSelector": {"$patch": "replace", "c": "3"}}},
     pod(containers=C, nodeSelector={"c": "3"})),
    ("map-patch-delete",
     pod(containers=copy.deepcopy(C), nodeSelector={"a": "1"}),
     {"spec": {"nodeSelector": {"$patch": "delete"}}},
     pod(containers=C, nodeSelector={})),
    ("map-patch-merge",
     pod(containers=copy.deepcopy(C), nodeSelector={"a": "1"}),
     {"spec": {"nodeSelector": {"$patch": "merge", "b": "2"}}},
     pod(containers=C, nodeSelector={"a": "1", "b": "2"})),
    ("nested-merge-ports-by-containerPort",
     pod(containers=[{"name": "a", "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 443}]}]),
     {"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 80, "name": "web"}]}]}},
     pod(containers=[{"name": "a", "ports": [{"containerPort": 80, "name": "web"}, {"containerPort": 443}]}])),
    ("env-merge-by-name-and-null-field",
     pod(containers=[{"name": "a", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]}]),
     {"spec": {"containers": [{"name": "a", "env": [{"name": "Y", "value": None, "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}]}},
     pod(containers=[{"name": "a", "env": [{"name": "X", "value": "1"},
                                           {"name": "Y", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}])),
    ("volumes-by-name-volumemounts-by-mountPath",
     pod(containers=[{"name": "a", "volumeMounts": [{"mountPath": "/a", "name": "v"}]}], volumes=[{"name": "v", "emptyDir": {}}]),
     {"spec": {"containers": [{"name": "a", "volumeMounts": [{"mountPath": "/b", "name": "w"}]}],
               "volumes": [{"name": "w", "configMap": {"name": "cm"}}]}},
     pod(containers=[{"name": "a", "volumeMounts": [{"mountPath": "/b", "name": "w"}, {"mountPath": "/a", "name": "v"}]}],
         volumes=[{"name": "w", "configMap": {"name": "cm"}}, {"name": "v", "emptyDir": {}}])),
    ("tolerations-atomic-replace",
     pod(tolerations=[{"key": "a", "operator": "Exists"}]),
     {"spec": {"tolerations": [{"key": "b", "operator": "Exists"}]}},
     pod(tolerations=[{"key": "b", "operator": "Exists"}])),
    ("args-atomic-replace",
     pod(containers=[{"name": "a", "args": ["1", "2"]}]),
     {"spec": {"containers": [{"name": "a", "args": ["3"]}]}},
     pod(containers=[{"name": "a", "args": ["3"]}])),
    ("finalizers-primitive-union",
     {"metadata": {"name": "p", "finalizers": ["a", "b"]}},
     {"metadata": {"finalizers": ["b", "c"]}},
     {"metadata": {"name": "p", "finalizers": ["a", "b", "c"]}}),
    ("finalizers-union-with-order",
     {"metadata": {"name": "p", "finalizers": ["a", "b"]}},
     {"metadata": {"$setElementOrder/finalizers": ["a", "b", "c"], "finalizers": ["c"]}},
     {"metadata": {"name": "p", "finalizers": ["a", "b", "c"]}}),
    ("delete-from-primitive-list",
     {"metadata": {"name": "p", "finalizers": ["a", "b", "c"]}},
     {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b", "zz"]}},
     {"metadata": {"name": "p", "finalizers": ["a", "c"]}}),
    ("delete-from-absent-primitive-list",
     {"metadata": {"name": "p"}},
     {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"]}},
     {"metadata": {"name": "p"}}),
    ("owner-references-by-uid",
     {"metadata": {"name": "p", "ownerReferences": [{"uid": "1", "name": "x", "kind": "K", "apiVersion": "v1"}]}},
     {"metadata": {"ownerReferences": [{"uid": "2", "name": "y", "kind": "K", "apiVersion": "v1"}]}},
     {"metadata": {"name": "p", "ownerReferences": [{"uid": "2", "name": "y", "kind": "K", "apiVersion": "v1"},
                                                    {"uid": "1", "name": "x", "kind": "K", "apiVersion": "v1"}]}}),
    ("new-field-drops-directives-and-nulls",
     pod(),
     {"spec": {"containers": [{"name": "a", "image": "x", "command": None}, {"name": "gone", "$patch": "delete"}],
               "$setElementOrder/containers": [{"name": "a"}], "hostname": None}},
     pod(containers=[{"name": "a", "image": "x"}])),
    ("null-deletes-list",
     pod(containers=copy.deepcopy(C), tolerations=[{"key": "a"}]),
     {"spec": {"tolerations": None}},
     pod(containers=C)),
    ("type-change-replaces",
     pod(containers=copy.deepcopy(C), nodeSelector={"a": "1"}),
     {"spec": {"nodeSelector": "oops"}},
     pod(containers=C, nodeSelector="oops")),
    ("unknown-fields-merge-as-maps",
     {"metadata": {"name": "p"}, "extra": {"a": 1, "l": [1]}},
     {"extra": {"b": 2, "l": [2]}},
     {"metadata": {"name": "p"}, "extra": {"a": 1, "b": 2, "l": [2]}}),
]


@pytest.mark.parametrize("live,patch,want", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_strategic_merge_patch(live: dict[str, Any], patch: dict[str, Any], want: dict[str, Any]) -> None:
    assert smp(live, patch) == want


DEPLOY_LIVE = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "d", "namespace": "default", "labels": {"app": "d"}},
    "spec": {
        "replicas": 3, "selector": {"matchLabels": {"app": "d"}},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
        "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [
            {"name": "web", "image": "nginx:1.0", "ports": [{"containerPort": 80, "protocol": "TCP"}],
             "imagePullPolicy": "IfNotPresent", "terminationMessagePath": "/dev/termination-log"},
            {"name": "sidecar", "image": "busybox", "imagePullPolicy": "Always"},
        ], "restartPolicy": "Always", "dnsPolicy": "ClusterFirst"}},
    },
}


def test_kubectl_client_side_apply_changed_container_list() -> None:
    """The body kubectl 1.32 sends when the applied container list changes: $setElementOrder,
    the changed/new items, and $patch: delete for the one dropped from the config."""
    patch = {
        "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{...}\n"}},
        "spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "web"}, {"name": "log"}],
            "containers": [{"image": "nginx:1.1", "name": "web"}, {"image": "fluentd", "name": "log"},
                           {"$patch": "delete", "name": "sidecar"}],
        }}},
    }
    out = smp(DEPLOY_LIVE, patch, DEPLOY)
    cs = out["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in cs] == ["web", "log"]
    assert cs[0] == {**DEPLOY_LIVE["spec"]["template"]["spec"]["containers"][0], "image": "nginx:1.1"}
    assert cs[1] == {"name": "log", "image": "fluentd"}
    assert out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] == "{...}\n"
    assert out["spec"]["replicas"] == 3 and out["metadata"]["labels"] == {"app": "d"}


def test_kubectl_apply_retain_keys_on_strategy() -> None:
    """Switching a Deployment to Recreate: kubectl sends $retainKeys for the retainKeys field."""
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}
    assert smp(DEPLOY_LIVE, patch, DEPLOY)["spec"]["strategy"] == {"type": "Recreate"}


def test_kubectl_scale_style_and_set_image_patches() -> None:
    out = smp(DEPLOY_LIVE, {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:2"}]}}}}, DEPLOY)
    assert [c["image"] for c in out["spec"]["template"]["spec"]["containers"]] == ["nginx:2", "busybox"]
    out = smp(DEPLOY_LIVE, {"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}}}}}, DEPLOY)
    assert out["spec"]["template"]["metadata"] == {"labels": {"app": "d"}, "annotations": {
        "kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}}


ERRORS = [
    ("unknown-map-directive", {"spec": {"nodeSelector": {"$patch": "frob"}}}, 400),
    ("merge-directive-in-list", {"spec": {"containers": [{"$patch": "merge"}]}}, 400),
    ("list-item-without-merge-key", {"spec": {"containers": [{"image": "x"}]}}, 400),
    ("delete-item-without-merge-key", {"spec": {"containers": [{"$patch": "delete"}]}}, 400),
    ("retain-keys-not-list", {"spec": {"$retainKeys": "x"}}, 400),
    ("retain-keys-missing-patched-key", {"spec": {"$retainKeys": ["a"], "hostname": "h"}}, 400),
    ("set-order-missing-item", {"spec": {"$setElementOrder/containers": [{"name": "a"}],
                                         "containers": [{"name": "b", "image": "x"}]}}, 400),
    ("list-of-lists", {"metadata": {"finalizers": [["x"]]}}, 422),
    ("not-an-object", ["x"], 400),
]


@pytest.mark.parametrize("patch,code", [(p, c) for _, p, c in ERRORS], ids=[i for i, _, _ in ERRORS])
def test_strategic_errors(patch: Any, code: int) -> None:
    live = pod(containers=copy.deepcopy(C), nodeSelector={"a": "1"})
    live["metadata"]["finalizers"] = ["f"]
    with pytest.raises(ApiError) as ei:
        smp(live, patch)
    assert ei.value.code == code


def test_strategic_on_custom_resource_is_415() -> None:
    with pytest.raises(ApiError) as ei:
        apply_patch({"spec": {}}, b"{}", SMP, ("example.com", "v1", "Widget"), is_custom=True)
    assert ei.value.code == 415 and ei.value.reason == "UnsupportedMediaType"


# --- properties over kubectl-style two-way patches -------------------------------------------

def two_way(src: Any, dst: Any, node: Node | None) -> dict[str, Any]:
    """What kubectl computes (CreateTwoWayMergePatch with $setElementOrder) for src -> dst."""
    out: dict[str, Any] = {}
    for k in src:
        if k not in dst:
            out[k] = None
    for k, v in dst.items():
        sub = node.field(k) if node else None
        if k not in src:
            out[k] = copy.deepcopy(v)
        elif isinstance(v, dict) and isinstance(src[k], dict):
            d = two_way(src[k], v, sub)
            if d:
                out[k] = d
        elif isinstance(v, list) and isinstance(src[k], list) and sub is not None and sub.patch_strategy == "merge":
            key = sub.merge_key
            if src[k] == v:
                continue
            if key:
                old = {i[key]: i for i in src[k]}
                new_keys = {i[key] for i in v}
                items = [{key: n, "$patch": "delete"} for n in old if n not in new_keys]
                for item in v:
                    if item[key] not in old:
                        items.append(copy.deepcopy(item))
                    else:
                        d = two_way(old[item[key]], item, sub.items())
                        if d:
                            items.append({key: item[key], **d})
                out[f"$setElementOrder/{k}"] = [{key: i[key]} for i in v]
            else:
                items = [i for i in v if i not in src[k]]
                gone = [i for i in src[k] if i not in v]
                if gone:
                    out[f"$deleteFromPrimitiveList/{k}"] = gone
                out[f"$setElementOrder/{k}"] = list(v)
            if items:
                out[k] = items
        elif v != src[k]:
            out[k] = copy.deepcopy(v)
    return out


names = st.sampled_from(["a", "b", "c", "d"])
env_items = st.lists(st.tuples(st.sampled_from(["X", "Y", "Z"]), st.sampled_from(["1", "2"])),
                     unique_by=lambda t: t[0], max_size=3).map(
    lambda es: [{"name": n, "value": v} for n, v in es])
containers = st.lists(
    st.tuples(names, st.sampled_from(["img:1", "img:2"]), env_items,
              st.lists(st.sampled_from(["x", "y"]), max_size=2)),
    unique_by=lambda t: t[0], max_size=4).map(
    lambda cs: [{"name": n, "image": i, **({"env": e} if e else {}), **({"args": a} if a else {})}
                for n, i, e, a in cs])
finalizers = st.lists(st.sampled_from(["f1", "f2", "f3", "f4"]), unique=True, max_size=4)
labels = st.dictionaries(st.sampled_from(["app", "tier", "env"]), st.sampled_from(["1", "2"]), max_size=3)


@st.composite
def pods(draw: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "p"}
    if fl := draw(finalizers):
        meta["finalizers"] = fl
    if lb := draw(labels):
        meta["labels"] = lb
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {"containers": draw(containers)}}


@settings(max_examples=150, deadline=None)
@given(pods(), pods())
def test_two_way_patch_reproduces_target(src: dict[str, Any], dst: dict[str, Any]) -> None:
    node = builtin_node(POD)
    assert smp(src, two_way(src, dst, node)) == dst


@settings(max_examples=100, deadline=None)
@given(pods(), pods(), pods())
def test_apply_a_then_b_equals_apply_b(base: dict[str, Any], a: dict[str, Any], b: dict[str, Any]) -> None:
    """kubectl re-apply: patching base to config a, then a -> b, lands where base -> b does."""
    node = builtin_node(POD)
    via_a = smp(smp(base, two_way(base, a, node)), two_way(a, b, node))
    assert via_a == smp(base, two_way(base, b, node)) == b


@settings(max_examples=100, deadline=None)
@given(pods(), pods())
def test_strategic_patch_is_idempotent(src: dict[str, Any], dst: dict[str, Any]) -> None:
    node = builtin_node(POD)
    patch = two_way(src, dst, node)
    once = smp(src, patch)
    assert smp(once, patch) == once


SCHEMA_FACTS = [
    (POD, ["spec", "containers"], "merge", "name", "map"),
    (POD, ["spec", "containers", "[]", "ports"], "merge", "containerPort", "map"),
    (POD, ["spec", "containers", "[]", "env"], "merge", "name", "map"),
    (POD, ["spec", "containers", "[]", "volumeMounts"], "merge", "mountPath", "map"),
    (POD, ["spec", "volumes"], "merge", "name", "map"),
    (POD, ["spec", "tolerations"], "", "", "atomic"),
    (POD, ["spec", "containers", "[]", "args"], "", "", "atomic"),
    (POD, ["status", "conditions"], "merge", "type", "map"),
    (POD, ["metadata", "ownerReferences"], "merge", "uid", "map"),
    (POD, ["metadata", "finalizers"], "merge", "", "set"),
    (DEPLOY, ["spec", "template", "spec", "containers"], "merge", "name", "map"),
    (DEPLOY, ["status", "conditions"], "merge", "type", "map"),
    (("", "v1", "Service"), ["spec", "ports"], "merge", "port", "map"),
    (("", "v1", "Node"), ["spec", "taints"], "", "", "atomic"),
]


@pytest.mark.parametrize("gvk,path,strategy,key,list_type", SCHEMA_FACTS,
                         ids=[f"{g[2]}.{'.'.join(p)}" for g, p, *_ in SCHEMA_FACTS])
def test_patch_metadata_from_openapi(gvk: tuple[str, str, str], path: list[str], strategy: str, key: str,
                                     list_type: str) -> None:
    node = builtin_node(gvk)
    for part in path:
        assert node is not None
        node = node.items() if part == "[]" else node.field(part)
    assert node is not None
    assert (node.patch_strategy, node.merge_key, node.list_type) == (strategy, key, list_type)
