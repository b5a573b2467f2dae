"""Server-side apply and managedFields, table-driven and property-based: create, re-apply,
merge by list type, removal of fields no longer applied, conflicts/force, shared ownership,
Update bookkeeping (scale then apply conflicts), resets, custom resources, FieldsV1."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controlplane.apiserver.meta.errors import ApiError
from controlplane.apiserver.patch import server_side_apply, update_managed_fields
from controlplane.apiserver.patch import managed_fields as mf
from controlplane.apiserver.patch.schema import builtin_node

DEPLOY = ("apps", "v1", "Deployment")
POD = ("", "v1", "Pod")
CM = ("", "v1", "ConfigMap")
WIDGET = ("example.com", "v1", "Widget")


def deploy(replicas: int = 2, image: str = "nginx:1", **extra_meta: Any) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "namespace": "default", "labels": {"app": "d"}, **extra_meta},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "d"}},
                     "template": {"metadata": {"labels": {"app": "d"}},
                                  "spec": {"containers": [{"name": "web", "image": image,
                                                           "ports": [{"containerPort": 80}]}]}}}}


def apply(live: dict[str, Any] | None, cfg: dict[str, Any], manager: str = "kubectl", *, force: bool = False,
          gvk: tuple[str, str, str] = DEPLOY, now: str = "2026-01-01T00:00:00Z", **kw: Any) -> dict[str, Any]:
    before = copy.deepcopy(live)
    out = server_side_apply(live, cfg, manager=manager, force=force, gvk=gvk, is_custom=gvk == WIDGET,
                            now=now, **kw)
    assert live == before, "live must not be mutated"
    return out


def update(old: dict[str, Any] | None, new: dict[str, Any], manager: str, *, gvk: tuple[str, str, str] = DEPLOY,
           now: str = "2026-01-01T00:00:01Z", subresource: str = "") -> dict[str, Any]:
    return update_managed_fields(old, new, manager=manager, operation="Update", gvk=gvk, now=now,
                                 subresource=subresource)


def owners(obj: dict[str, Any]) -> dict[tuple[str, str, str], set[str]]:
    """(manager, operation, subresource) -> the field paths it owns, printed Kubernetes-style."""
    return {(e["manager"], e["operation"], e.get("subresource", "")):
            {mf.path_string(p) for p in mf.decode_fields(e["fieldsV1"])}
            for e in obj["metadata"].get("managedFields", [])}


def content(obj: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out["metadata"].pop("managedFields", None)
    return out


def scaled(obj: dict[str, Any], replicas: int, manager: str = "kubectl") -> dict[str, Any]:
    new = copy.deepcopy(obj)
    new["spec"]["replicas"] = replicas
    return update(obj, new, manager, subresource="scale")


# --- create / re-apply ---------------------------------------------------------------------

def test_create_records_apply_entry() -> None:
    out = apply(None, deploy())
    assert content(out) == deploy()
    (entry,) = out["metadata"]["managedFields"]
    assert {k: entry[k] for k in ("manager", "operation", "apiVersion", "time", "fieldsType")} == {
        "manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1",
        "time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1"}
    assert entry["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"web"}'] == {
        ".": {}, "f:image": {}, "f:name": {},
        "f:ports": {'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}}}}
    assert entry["fieldsV1"]["f:spec"]["f:selector"] == {}, "LabelSelector is an atomic map"
    assert "f:name" not in entry["fieldsV1"]["f:metadata"], "identity fields are never owned"


def test_reapply_unchanged_keeps_time() -> None:
    first = apply(None, deploy())
    again = apply(first, deploy(), now="2026-02-02T00:00:00Z")
    assert again == first


def test_reapply_changes_merge_into_live() -> None:
    live = apply(None, deploy())
    live["status"] = {"replicas": 2}
    live["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = "IfNotPresent"  # defaulted
    out = apply(live, deploy(image="nginx:2"), now="T2")
    c = out["spec"]["template"]["spec"]["containers"][0]
    assert c["image"] == "nginx:2" and c["imagePullPolicy"] == "IfNotPresent"
    assert out["status"] == {"replicas": 2}
    assert out["metadata"]["managedFields"][0]["time"] == "T2"


def test_applied_managed_fields_is_400() -> None:
    cfg = deploy()
    cfg["metadata"]["managedFields"] = []
    with pytest.raises(ApiError) as ei:
        apply(None, cfg)
    assert ei.value.code == 400


# --- removal of fields no longer applied ---------------------------------------------------

REMOVALS = [
    ("label", lambda c: c["metadata"]["labels"].update(tier="web"), lambda o: "tier" not in o["metadata"]["labels"]),
    ("container", lambda c: c["spec"]["template"]["spec"]["containers"].append({"name": "side", "image": "b"}),
     lambda o: [x["name"] for x in o["spec"]["template"]["spec"]["containers"]] == ["web"]),
    ("scalar-field", lambda c: c["spec"].update(minReadySeconds=5), lambda o: "minReadySeconds" not in o["spec"]),
    ("nested-struct", lambda c: c["spec"].update(strategy={"type": "Recreate"}), lambda o: "strategy" not in o["spec"]),
    ("port", lambda c: c["spec"]["template"]["spec"]["containers"][0]["ports"].append({"containerPort": 81}),
     lambda o: o["spec"]["template"]["spec"]["containers"][0]["ports"] == [{"containerPort": 80}]),
]


@pytest.mark.parametrize("add,check", [(a, c) for _, a, c in REMOVALS], ids=[i for i, _, _ in REMOVALS])
def test_fields_no_longer_applied_are_removed(add: Any, check: Any) -> None:
    bigger = deploy()
    add(bigger)
    out = apply(apply(None, bigger), deploy())
    assert check(out)
    assert content(out) == deploy()


def test_field_no_longer_applied_but_owned_by_another_manager_stays() -> None:
    bigger = deploy()
    bigger["metadata"]["labels"]["tier"] = "web"
    live = apply(None, bigger)
    live = apply(live, {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "labels": {"tier": "web"}}},
                 manager="other")
    out = apply(live, deploy())
    assert out["metadata"]["labels"] == {"app": "d", "tier": "web"}
    assert owners(out)[("other", "Apply", "")] == {".metadata.labels.tier"}


def test_fields_set_by_updates_survive_apply_that_never_had_them() -> None:
    live = apply(None, deploy())
    new = copy.deepcopy(live)
    new["metadata"].setdefault("annotations", {})["note"] = "x"
    live = update(live, new, "kubectl-annotate")
    out = apply(live, deploy(image="nginx:3"))
    assert out["metadata"]["annotations"] == {"note": "x"}


# --- conflicts and force -------------------------------------------------------------------

def test_scale_then_apply_different_replicas_conflicts() -> None:
    live = scaled(apply(None, deploy()), 5)
    assert owners(live)[("kubectl", "Update", "scale")] == {".spec.replicas"}
    assert ".spec.replicas" not in owners(live)[("kubectl", "Apply", "")]
    with pytest.raises(ApiError) as ei:
        apply(live, deploy(replicas=3))
    e = ei.value
    assert (e.code, e.reason) == (409, "Conflict")
    assert e.message == 'Apply failed with 1 conflict: conflict with "kubectl" with subresource "scale" using apps/v1: .spec.replicas'
    assert e.details["causes"] == [{"reason": "FieldManagerConflict", "field": ".spec.replicas",
                                    "message": 'conflict with "kubectl" with subresource "scale" using apps/v1'}]


def test_conflict_with_client_side_apply_manager_message() -> None:
    live = update(None, deploy(), "kubectl-client-side-apply")
    with pytest.raises(ApiError) as ei:
        apply(live, deploy(replicas=9), manager="ci")
    assert ei.value.message == ('Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" '
                                'using apps/v1: .spec.replicas')


def test_several_conflicts_are_listed() -> None:
    live = update(None, deploy(), "kubectl-client-side-apply")
    with pytest.raises(ApiError) as ei:
        apply(live, deploy(replicas=9, image="nginx:9"), manager="ci")
    assert ei.value.message.startswith("Apply failed with 2 conflicts: conflicts with \"kubectl-client-side-apply\" using apps/v1:")
    assert {c["field"] for c in ei.value.details["causes"]} == {
        ".spec.replicas", '.spec.template.spec.containers[name="web"].image'}


def test_force_takes_ownership() -> None:
    live = scaled(apply(None, deploy()), 5)
    out = apply(live, deploy(replicas=3), force=True)
    assert out["spec"]["replicas"] == 3
    assert ("kubectl", "Update", "scale") not in owners(out)
    assert ".spec.replicas" in owners(out)[("kubectl", "Apply", "")]


def test_same_value_is_shared_not_a_conflict() -> None:
    live = apply(None, deploy())
    out = apply(live, deploy(), manager="ci")
    assert ".spec.replicas" in owners(out)[("ci", "Apply", "")]
    assert ".spec.replicas" in owners(out)[("kubectl", "Apply", "")]
    # ci changing it now conflicts with kubectl
    with pytest.raises(ApiError):
        apply(out, deploy(replicas=4), manager="ci")


def test_first_apply_on_untracked_object_conflicts_with_before_first_apply() -> None:
    live = deploy(replicas=1)
    with pytest.raises(ApiError) as ei:
        apply(live, deploy(replicas=2), manager="ci")
    assert '"before-first-apply"' in ei.value.message
    out = apply(live, deploy(replicas=1), manager="ci")
    assert ("before-first-apply", "Update", "") in owners(out)


def test_kubectl_upgrades_from_client_side_apply() -> None:
    cfg = deploy()
    last = json.dumps(cfg)
    live = update(None, deploy(annotations={"kubectl.kubernetes.io/last-applied-configuration": last}),
                  "kubectl-client-side-apply")
    out = apply(live, deploy(replicas=4))  # replicas still equals what kubectl applied client-side
    assert out["spec"]["replicas"] == 4
    assert json.loads(out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]) == deploy(replicas=4)
    # but a value someone else changed since (scale) still conflicts
    live = scaled(live, 7, manager="kubectl-scale")
    with pytest.raises(ApiError):
        apply(live, deploy(replicas=4))


# --- list types ----------------------------------------------------------------------------

def test_two_appliers_own_their_own_containers() -> None:
    live = apply(None, deploy())
    side = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"template": {"spec": {"containers": [{"name": "side", "image": "s"}]}}}}
    out = apply(live, side, manager="injector")
    assert [c["name"] for c in out["spec"]["template"]["spec"]["containers"]] == ["web", "side"]
    out = apply(out, deploy(image="nginx:2"))
    assert [c["image"] for c in out["spec"]["template"]["spec"]["containers"]] == ["nginx:2", "s"]


def test_finalizers_set_union_and_removal() -> None:
    a = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "finalizers": ["a/x", "shared"]}}
    b = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "finalizers": ["b/y", "shared"]}}
    live = apply(apply(None, a, "ma", gvk=CM), b, "mb", gvk=CM)
    assert live["metadata"]["finalizers"] == ["a/x", "b/y", "shared"]
    out = apply(live, {**a, "metadata": {"name": "c", "finalizers": []}}, "ma", gvk=CM)
    assert out["metadata"]["finalizers"] == ["b/y", "shared"]


def test_atomic_list_replaced_and_owned_whole() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "c", "image": "i", "args": ["1", "2"]}],
                    "tolerations": [{"key": "k", "operator": "Exists"}]}}
    out = apply(None, pod, gvk=POD)
    assert {'.spec.containers[name="c"].args', ".spec.tolerations"} <= owners(out)[("kubectl", "Apply", "")]
    pod2 = copy.deepcopy(pod)
    pod2["spec"]["containers"][0]["args"] = ["3"]
    assert apply(out, pod2, gvk=POD)["spec"]["containers"][0]["args"] == ["3"]


def test_merge_order_follows_structured_merge_diff() -> None:
    def cm(names: list[str]) -> dict[str, Any]:
        return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                "spec": {"template": {"spec": {"containers": [{"name": n, "image": n} for n in names]}}}}
    live = apply(apply(None, cm(["a", "b", "c"]), "x"), cm(["b"]), "y")
    out = apply(live, cm(["c", "a"]), "x")
    assert [c["name"] for c in out["spec"]["template"]["spec"]["containers"]] == ["b", "c", "a"]


# --- custom resources ----------------------------------------------------------------------

WIDGET_SCHEMA = {"type": "object", "properties": {"spec": {"type": "object", "properties": {
    "size": {"type": "integer"},
    "items": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["id"],
              "items": {"type": "object", "properties": {"id": {"type": "string"}, "v": {"type": "integer"}}}},
    "tags": {"type": "array", "items": {"type": "string"}}}}}}


def widget(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": spec}


def test_custom_resource_with_schema_merges_list_maps() -> None:
    live = apply(None, widget(items=[{"id": "a", "v": 1}]), "m1", gvk=WIDGET, schema=WIDGET_SCHEMA)
    out = apply(live, widget(items=[{"id": "b", "v": 2}]), "m2", gvk=WIDGET, schema=WIDGET_SCHEMA)
    assert out["spec"]["items"] == [{"id": "a", "v": 1}, {"id": "b", "v": 2}]
    assert owners(out)[("m2", "Apply", "")] == {'.spec.items[id="b"]', '.spec.items[id="b"].id', '.spec.items[id="b"].v'}


def test_custom_resource_lists_atomic_without_schema() -> None:
    live = apply(None, widget(items=[{"id": "a"}], tags=["x"]), "m1", gvk=WIDGET)
    with pytest.raises(ApiError):
        apply(live, widget(items=[{"id": "b"}]), "m2", gvk=WIDGET)
    assert apply(live, widget(items=[{"id": "b"}]), "m1", gvk=WIDGET)["spec"] == {"items": [{"id": "b"}]}


# --- update bookkeeping --------------------------------------------------------------------

def test_create_by_update_records_everything() -> None:
    out = update(None, deploy(), "kubectl-create")
    fields = owners(out)[("kubectl-create", "Update", "")]
    assert {".spec.replicas", ".metadata.labels", ".metadata.labels.app",
            '.spec.template.spec.containers[name="web"]'} <= fields
    assert out["metadata"]["managedFields"][0]["fieldsV1"]["f:metadata"]["f:labels"] == {".": {}, "f:app": {}}


def test_update_moves_ownership_and_drops_removed_fields() -> None:
    live = apply(None, deploy())
    new = copy.deepcopy(live)
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:edit"
    del new["metadata"]["labels"]
    out = update(live, new, "kubectl-edit")
    ap = owners(out)[("kubectl", "Apply", "")]
    assert '.spec.template.spec.containers[name="web"].image' not in ap and ".metadata.labels.app" not in ap
    assert owners(out)[("kubectl-edit", "Update", "")] == {'.spec.template.spec.containers[name="web"].image'}


def test_update_without_changes_records_nothing() -> None:
    live = apply(None, deploy())
    assert update(live, copy.deepcopy(live), "noop")["metadata"]["managedFields"] == live["metadata"]["managedFields"]


@pytest.mark.parametrize("sent", [[], [{}]], ids=["empty-list", "one-empty-entry"])
def test_sending_empty_managed_fields_resets_them(sent: list[Any]) -> None:
    live = apply(None, deploy())
    new = copy.deepcopy(live)
    new["metadata"]["managedFields"] = sent
    assert "managedFields" not in update(live, new, "x")["metadata"]
    new["spec"]["replicas"] = 4
    assert owners(update(live, new, "x")) == {("x", "Update", ""): {".spec.replicas"}}


def test_absent_managed_fields_keep_live_ones() -> None:
    live = apply(None, deploy())
    new = content(live)
    assert update(live, new, "x")["metadata"]["managedFields"] == live["metadata"]["managedFields"]


def test_status_is_not_owned_through_the_main_resource() -> None:
    new = deploy()
    new["status"] = {"replicas": 1}
    out = update(None, new, "c")
    assert not any(p.startswith(".status") for p in owners(out)[("c", "Update", "")])
    st = copy.deepcopy(out)
    st["status"] = {"replicas": 2}
    out2 = update(out, st, "kube-controller-manager", subresource="status")
    assert owners(out2)[("kube-controller-manager", "Update", "status")] == {".status.replicas"}


# --- properties ----------------------------------------------------------------------------

names = st.sampled_from(["a", "b", "c"])
containers = st.lists(
    st.tuples(names, st.sampled_from(["i:1", "i:2"]), st.lists(st.sampled_from(["x", "y"]), max_size=2),
              st.lists(st.sampled_from(["E", "F"]), unique=True, max_size=2)),
    unique_by=lambda t: t[0], min_size=1, max_size=3).map(
    lambda cs: [{"name": n, "image": i, **({"args": a} if a else {}),
                 **({"env": [{"name": e, "value": "v"} for e in env]} if env else {})} for n, i, a, env in cs])


@st.composite
def pod_configs(draw: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "p"}
    if labels := draw(st.dictionaries(st.sampled_from(["app", "tier"]), st.sampled_from(["1", "2"]), max_size=2)):
        meta["labels"] = labels
    if fin := draw(st.lists(st.sampled_from(["f/1", "f/2", "f/3"]), unique=True, max_size=2)):
        meta["finalizers"] = fin
    spec: dict[str, Any] = {"containers": draw(containers)}
    if draw(st.booleans()):
        spec["nodeName"] = draw(st.sampled_from(["n1", "n2"]))
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


@settings(max_examples=120, deadline=None)
@given(pod_configs(), pod_configs())
def test_sole_applier_apply_a_then_b_equals_apply_b(a: dict[str, Any], b: dict[str, Any]) -> None:
    via_a = apply(apply(None, a, gvk=POD), b, gvk=POD)
    fresh = apply(None, b, gvk=POD)
    assert content(via_a) == content(fresh) == b
    assert owners(via_a) == owners(fresh)


@settings(max_examples=120, deadline=None)
@given(pod_configs())
def test_fields_v1_round_trip(cfg: dict[str, Any]) -> None:
    paths = set(mf.members(cfg, builtin_node(POD)))
    assert mf.decode_fields(json.loads(json.dumps(mf.encode_fields(paths)))) == paths
