"""Field-set properties (managed_fields.py, fields_tree.py, fields_diff.py): the one-walk FieldsV1 builder a create uses
equals encoding the member paths less the stripped/reset ones; ``encode_fields`` equals the
plain sorted-tree encoding; ``without`` equals the per-prefix definition; decode inverts
encode. Objects are generated over field names the Pod/Deployment/custom schemas know, so
list maps (with duplicate keys), sets, atomic lists/maps and unknown fields all occur."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controlplane.apiserver.patch import fields_diff, fields_tree
from controlplane.apiserver.patch import managed_fields as mf
from controlplane.apiserver.patch.schema import Node, builtin_node, crd_node
from controlplane.apiserver.patch.ssa import STRIPPED

WIDGET_SCHEMA = {"type": "object", "properties": {
    "metadata": {"type": "object", "properties": {"labels": {"type": "object",
                                                            "additionalProperties": {"type": "string"}}}},
    "spec": {"type": "object", "properties": {
        "items": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["id", "zone"],
                  "items": {"type": "object", "properties": {"id": {"type": "string"}, "v": {"type": "integer"}}}},
        "set": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
        "conf": {"type": "object", "x-kubernetes-map-type": "atomic"},
        "pinned": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["id"],
                   "items": {"type": "object", "x-kubernetes-map-type": "atomic",
                             "properties": {"id": {"type": "string"}}}},
        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}}}

ROOTS: dict[str, Node | None] = {
    "pod": builtin_node(("", "v1", "Pod")), "deployment": builtin_node(("apps", "v1", "Deployment")),
    "configmap": builtin_node(("", "v1", "ConfigMap")), "widget": crd_node(WIDGET_SCHEMA), "none": None}

NAMES = ["metadata", "spec", "status", "labels", "annotations", "finalizers", "name", "namespace", "containers",
         "image", "ports", "containerPort", "protocol", "env", "value", "tolerations", "key", "data", "selector",
         "matchLabels", "template", "items", "id", "zone", "v", "set", "conf", "free", "x", "nodeSelector",
         "resources", "requests", "volumes", "emptyDir", "kind", "apiVersion", "uid", "ownerReferences"]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2, 90), st.sampled_from(["a", "b", "TCP", "web", ""]),
                    st.floats(allow_nan=False, allow_infinity=False, width=16))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(NAMES), inner, max_size=5)), max_leaves=40)
free_objects = st.dictionaries(st.sampled_from(NAMES), values, max_size=6)


def opt(d: dict[str, Any]) -> Any:
    """Fixed keys, each present or not."""
    return st.fixed_dictionaries({}, optional=d)


small = st.sampled_from(["a", "b"])
keyed = st.lists(opt({"name": small, "id": small, "zone": small, "uid": small, "type": small, "key": small,
                      "containerPort": st.sampled_from([80, 81]), "protocol": st.sampled_from([None, "TCP", "UDP"]),
                      "image": small, "v": values, "value": values,
                      "ports": st.lists(opt({"containerPort": st.sampled_from([80, 81]),
                                             "protocol": st.sampled_from([None, "UDP"])}), max_size=3),
                      "env": st.lists(opt({"name": small, "value": small}), max_size=3),
                      "x": values}).map(lambda d: d or {}) | scalars, max_size=4)
shaped_objects = opt({
    "metadata": opt({"name": small, "uid": small, "labels": st.dictionaries(small, small) | st.none(),
                     "finalizers": st.lists(small, max_size=3), "ownerReferences": keyed,
                     "annotations": st.dictionaries(small, values, max_size=2)}),
    "spec": st.fixed_dictionaries({"containers": keyed, "items": keyed, "pinned": keyed}, optional={
                 "initContainers": keyed, "tolerations": keyed, "volumes": keyed,
                 "nodeSelector": st.dictionaries(small, small, max_size=2),
                 "set": st.lists(small | st.integers(0, 2), max_size=3), "conf": values, "free": values,
                 "selector": values, "template": opt({"metadata": values, "spec": opt({"containers": keyed})}),
                 "x": values}),
    "status": opt({"conditions": keyed, "phase": small, "x": values}),
    "data": st.dictionaries(small, small | st.none(), max_size=2), "x": values})
objects = st.one_of(free_objects, shaped_objects, shaped_objects)
prefix_sets = st.sets(st.sampled_from(["status", "spec", "metadata", "data", "x"]), max_size=3).map(
    lambda ks: {("f:" + k,) for k in ks})


@settings(max_examples=250, deadline=None)
@given(st.sampled_from(sorted(ROOTS)), objects, prefix_sets, st.booleans())
def test_fields_v1_equals_encoded_member_set(root: str, obj: dict[str, Any], prefixes: set[tuple[str, ...]],
                                             granular: bool) -> None:
    node = ROOTS[root]
    want = mf.encode_fields(mf.without(mf.members(obj, node, granular_maps=granular), STRIPPED, prefixes))
    got = fields_tree.fields_v1(obj, node, granular_maps=granular, exact=STRIPPED, prefixes=prefixes)
    assert json.dumps(got) == json.dumps(want)


EXAMPLES = [
    ("pod", {"spec": {"containers": [{"name": "a", "x": 1}, {"name": "a", "image": "b"}]}}),
    ("pod", {"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 80}, {"containerPort": 80,
                                                                                      "protocol": "TCP"}]}]}}),
    ("pod", {"metadata": {"finalizers": ["a", "a"], "name": {"x": 1}, "labels": {}}, "apiVersion": {"a": 1}}),
    ("widget", {"spec": {"pinned": [{"id": "a", "x": {"y": 1}}, {"id": "b"}, {}], "items": [{"id": "a"}, "s"]}}),
    ("widget", {"spec": {"items": [{"id": "a", "zone": "z"}, {"id": "a", "zone": "z", "v": 1}]}}),
    ("none", {"metadata": {"name": "n"}, "kind": "K", "spec": {"a": [1], "b": {}}}),
]


@pytest.mark.parametrize("root,obj", EXAMPLES, ids=[str(i) for i in range(len(EXAMPLES))])
@pytest.mark.parametrize("prefixes", [set(), {("f:spec",)}, {("f:metadata",)}], ids=["all", "no-spec", "no-meta"])
def test_fields_v1_examples(root: str, obj: dict[str, Any], prefixes: set[tuple[str, ...]]) -> None:
    node = ROOTS[root]
    want = mf.encode_fields(mf.without(mf.members(obj, node, granular_maps=True), STRIPPED, prefixes))
    got = fields_tree.fields_v1(obj, node, granular_maps=True, exact=STRIPPED, prefixes=prefixes)
    assert json.dumps(got) == json.dumps(want)


def mix(a: Any, b: Any, draw: Any) -> Any:
    """A value between ``a`` and ``b``: per key/item, one side's value, or (both objects or
    lists) a mix of the two; so a pair shares most of its structure, as updates do."""
    choice = draw(st.integers(0, 3))
    if choice == 0:
        return a
    if choice == 1:
        return b
    if isinstance(a, dict) and isinstance(b, dict):
        return {k: mix(a.get(k), b.get(k), draw) if k in a and k in b else (a.get(k) if k in a else b[k])
                for k in list(a) + [k for k in b if k not in a] if draw(st.integers(0, 4))}
    if isinstance(a, list) and isinstance(b, list):
        return [mix(x, y, draw) for x, y in zip(a, b)] + (a[len(b):] if draw(st.booleans()) else b[len(a):])
    return b


@st.composite
def related_pairs(draw: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    a, b = draw(objects), draw(objects)
    return a, mix(a, b, draw)


@settings(max_examples=250, deadline=None)
@given(st.sampled_from(sorted(ROOTS)), related_pairs(), st.booleans(), st.booleans())
def test_changes_equal_comparing_member_sets(root: str, pair: tuple[dict[str, Any], dict[str, Any]],
                                             granular: bool, swap: bool) -> None:
    old, new = pair[::-1] if swap else pair
    node = ROOTS[root]
    want = mf.compare(mf.members(old, node, granular_maps=granular), mf.members(new, node, granular_maps=granular))
    got = fields_diff.changes(old, new, node, granular_maps=granular)
    assert (got.added, got.modified, got.removed) == (want.added, want.modified, want.removed)
    skip = frozenset({"status", "spec"})
    cut = fields_diff.changes(old, new, node, granular_maps=granular, skip=skip)
    drop = {("f:status",), ("f:spec",)}
    assert (cut.added, cut.modified, cut.removed) == tuple(
        mf.without(x, set(), drop) for x in (want.added, want.modified, want.removed))


CHANGE_EXAMPLES = [
    ({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "a"}]}},
     {"spec": {"containers": [{"name": "a", "image": "y"}]}}),
    ({"spec": {"tolerations": [{"key": "k"}]}, "metadata": {"labels": {}}},
     {"spec": {"tolerations": [{"key": "k", "value": True}]}, "metadata": {"labels": {"a": "1"}}}),
    ({"data": {"a": 1}, "x": {"y": 1}}, {"data": {"a": True}, "x": [1]}),
    ({"x": 1.0, "y": [1], "z": {"a": None}}, {"x": 1, "y": [1.0], "z": {"a": None, "b": {}}}),
    ({"spec": {"set": ["a", "a"], "pinned": [{"id": "a", "v": 1}, 3]}},
     {"spec": {"set": ["a", 1], "pinned": [{"id": "a", "v": 2}, {"id": "b"}]}}),
    ({"spec": {"items": [{"id": "a", "zone": "z"}, "s"]}}, {"spec": {"items": {"id": "a"}}}),
]


@pytest.mark.parametrize("old,new", CHANGE_EXAMPLES, ids=[str(i) for i in range(len(CHANGE_EXAMPLES))])
@pytest.mark.parametrize("root", sorted(ROOTS))
def test_changes_examples(root: str, old: dict[str, Any], new: dict[str, Any]) -> None:
    node = ROOTS[root]
    for a, b in ((old, new), (new, old)):
        want = mf.compare(mf.members(a, node, granular_maps=True), mf.members(b, node, granular_maps=True))
        got = fields_diff.changes(a, b, node, granular_maps=True)
        assert (got.added, got.modified, got.removed) == (want.added, want.modified, want.removed)


def reference_encode(paths: set[tuple[str, ...]]) -> dict[str, Any]:
    """FieldsV1 by definition: a tree of the paths, children sorted, "." first in a member
    that has children."""
    tree: dict[str, Any] = {}
    for p in paths:
        node = tree
        for pe in p:
            node = node.setdefault(pe, {})

    def emit(node: dict[str, Any], prefix: tuple[str, ...]) -> dict[str, Any]:
        out: dict[str, Any] = {".": {}} if node and prefix in paths else {}
        for k in sorted(node):
            out[k] = emit(node[k], prefix + (k,))
        return out

    return emit(tree, ())


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(ROOTS)), objects, st.booleans())
def test_encode_fields_equals_reference_and_round_trips(root: str, obj: dict[str, Any], granular: bool) -> None:
    paths = set(mf.members(obj, ROOTS[root], granular_maps=granular))
    enc = mf.encode_fields(paths)
    assert json.dumps(enc) == json.dumps(reference_encode(paths))
    assert mf.decode_fields(json.loads(json.dumps(enc))) == paths


@pytest.mark.parametrize("prefixes", [set(), {("f:status",)}, {("f:spec", "f:x")}, {()}, {("f:a",), ("f:b", "f:c")}],
                         ids=["none", "top-level", "nested", "everything", "mixed"])
def test_without_matches_definition(prefixes: set[tuple[str, ...]]) -> None:
    paths = {(), ("f:a",), ("f:a", "f:b"), ("f:b",), ("f:b", "f:c"), ("f:b", "f:c", "f:d"), ("f:spec", "f:x"),
             ("f:spec",), ("f:spec", "f:xy"), ("f:status", "f:phase"), ("f:statusx",)}
    exact = {("f:b",)}
    want = {p for p in paths if p not in exact and not any(p[:len(q)] == q for q in prefixes)}
    assert mf.without(paths, exact, prefixes) == want


@pytest.mark.parametrize("item,keys,want", [
    ({"name": "web"}, ["name"], 'k:{"name":"web"}'),
    ({"containerPort": 80}, ["containerPort", "protocol"], 'k:{"containerPort":80,"protocol":"TCP"}'),
    ({"containerPort": 80, "protocol": None}, ["protocol", "containerPort"], 'k:{"containerPort":80,"protocol":"TCP"}'),
    ({"id": True}, ["id"], 'k:{"id":true}'),
    ({"id": 1}, ["id"], 'k:{"id":1}'),
    ({"id": 1.0}, ["id"], 'k:{"id":1.0}'),
    ({"id": "é"}, ["id"], 'k:{"id":"é"}'),
    ({"other": 1}, ["id"], "i:3"),
    ("scalar", ["id"], "i:3"),
], ids=["name", "port-default", "null-key", "bool-not-int", "int", "float", "unicode", "no-key", "not-a-dict"])
def test_item_element_for_list_maps(item: Any, keys: list[str], want: str) -> None:
    for _ in range(2):  # the second time from the cache
        assert mf.item_element(item, "map", keys, 3) == want


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(sorted(ROOTS)), objects, st.data())
def test_tree_operations_match_set_operations(root: str, obj: dict[str, Any], data: Any) -> None:
    paths = set(mf.members(obj, ROOTS[root], granular_maps=True))
    tree = mf.encode_fields(paths)
    assert fields_tree.is_canonical(tree) and fields_tree.is_canonical(json.loads(json.dumps(tree)))
    probe = sorted(paths) + [p[:-1] for p in paths] + [p + ("f:zz",) for p in paths] + [()]
    assert all(fields_tree.has_member(tree, p) == (p in paths) for p in probe)
    drop = set(data.draw(st.lists(st.sampled_from(probe), max_size=6)))
    copy_ = fields_tree.copy_tree(tree)
    fields_tree.remove_members(copy_, drop)
    assert json.dumps(copy_) == json.dumps(mf.encode_fields(paths - drop))
    assert fields_tree.is_canonical(copy_)
    assert json.dumps(tree) == json.dumps(mf.encode_fields(paths)), "copy_tree shares nothing"


@pytest.mark.parametrize("tree", [
    {"f:b": {}, "f:a": {}},
    {"f:a": {"f:y": {}, ".": {}}},
    {"f:a": {".": {}}},
    {"f:a": {".": {"x": {}}, "f:b": {}}},
    {".": {}, "f:a": {}},
    {"f:a": 1},
    {"f:a": None},
    {"f:l": {'k:{"name": "a"}': {}}},
    {"f:l": {'k:{"b":1,"a":2}': {}}},
    [],
    None,
], ids=["unsorted", "dot-not-first", "dot-alone", "dot-with-content", "root-dot", "int-leaf", "null-leaf",
        "spaced-key", "unsorted-key", "list", "none"])
def test_non_canonical_trees_are_recognised(tree: Any) -> None:
    assert not fields_tree.is_canonical(tree)
