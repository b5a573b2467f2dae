"""JSON patch (RFC 6902) and merge patch (RFC 7386) through ``apply_patch``, table-driven,
plus a Hypothesis property: the merge patch of a diff reproduces the target."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controlplane.apiserver.meta.errors import ApiError
from controlplane.apiserver.patch import apply_patch
from controlplane.apiserver.patch.merge_patch import create_merge_patch, merge_patch

CM = ("", "v1", "ConfigMap")
JP = "application/json-patch+json"
MP = "application/merge-patch+json"

LIVE: dict[str, Any] = {
    "apiVersion": "v1", "kind": "ConfigMap",
    "metadata": {"name": "c", "resourceVersion": "7", "finalizers": ["a", "b"],
                 "annotations": {"x/y": "1", "t~n": "2"}},
    "data": {"k": "v", "n": "1"},
}


def jp(live: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    return apply_patch(live, json.dumps(ops).encode(), JP, CM, is_custom=False)


JSON_OK = [
    ("add-key", [{"op": "add", "path": "/data/z", "value": "9"}], lambda o: o["data"]["z"] == "9"),
    ("add-replaces-key", [{"op": "add", "path": "/data/k", "value": "w"}], lambda o: o["data"]["k"] == "w"),
    ("add-append-dash", [{"op": "add", "path": "/metadata/finalizers/-", "value": "c"}],
     lambda o: o["metadata"]["finalizers"] == ["a", "b", "c"]),
    ("add-insert-index", [{"op": "add", "path": "/metadata/finalizers/0", "value": "c"}],
     lambda o: o["metadata"]["finalizers"] == ["c", "a", "b"]),
    ("add-at-length", [{"op": "add", "path": "/metadata/finalizers/2", "value": "c"}],
     lambda o: o["metadata"]["finalizers"] == ["a", "b", "c"]),
    ("remove-key", [{"op": "remove", "path": "/data/k"}], lambda o: "k" not in o["data"]),
    ("remove-index", [{"op": "remove", "path": "/metadata/finalizers/0"}],
     lambda o: o["metadata"]["finalizers"] == ["b"]),
    ("replace", [{"op": "replace", "path": "/data/k", "value": "r"}], lambda o: o["data"]["k"] == "r"),
    ("escaped-slash", [{"op": "replace", "path": "/metadata/annotations/x~1y", "value": "3"}],
     lambda o: o["metadata"]["annotations"]["x/y"] == "3"),
    ("escaped-tilde", [{"op": "remove", "path": "/metadata/annotations/t~0n"}],
     lambda o: "t~n" not in o["metadata"]["annotations"]),
    ("move", [{"op": "move", "from": "/data/k", "path": "/data/m"}],
     lambda o: o["data"] == {"m": "v", "n": "1"}),
    ("copy", [{"op": "copy", "from": "/data/k", "path": "/metadata/labels"}],
     lambda o: o["metadata"]["labels"] == "v" and o["data"]["k"] == "v"),
    ("test-then-replace-kopf", [{"op": "test", "path": "/metadata/resourceVersion", "value": "7"},
                                {"op": "replace", "path": "/metadata/finalizers", "value": []}],
     lambda o: o["metadata"]["finalizers"] == []),
    ("test-object", [{"op": "test", "path": "/data", "value": {"n": "1", "k": "v"}}],
     lambda o: o == LIVE),
    ("test-missing-is-null", [{"op": "test", "path": "/spec", "value": None}], lambda o: o == LIVE),
    ("empty", [], lambda o: o == LIVE),
]


@pytest.mark.parametrize("ops,check", [(o, c) for _, o, c in JSON_OK], ids=[i for i, _, _ in JSON_OK])
def test_json_patch_applies(ops: list[dict[str, Any]], check: Any) -> None:
    before = copy.deepcopy(LIVE)
    out = jp(LIVE, ops)
    assert check(out)
    assert LIVE == before, "live must not be mutated"


JSON_422 = [
    ("test-fails", [{"op": "test", "path": "/metadata/resourceVersion", "value": "6"},
                    {"op": "replace", "path": "/data/k", "value": "x"}]),
    ("test-type-strict", [{"op": "test", "path": "/data/n", "value": 1}]),
    ("remove-missing", [{"op": "remove", "path": "/data/nope"}]),
    ("replace-missing", [{"op": "replace", "path": "/data/nope", "value": 1}]),
    ("add-missing-parent", [{"op": "add", "path": "/spec/x/y", "value": 1}]),
    ("index-out-of-range", [{"op": "add", "path": "/metadata/finalizers/5", "value": "c"}]),
    ("bad-index", [{"op": "remove", "path": "/metadata/finalizers/01"}]),
    ("unknown-op", [{"op": "frob", "path": "/data"}]),
    ("missing-value", [{"op": "add", "path": "/data/q"}]),
    ("missing-from", [{"op": "move", "path": "/data/q"}]),
    ("pointer-no-slash", [{"op": "add", "path": "data", "value": 1}]),
    ("move-into-child", [{"op": "move", "from": "/data", "path": "/data/x"}]),
    ("test-null-missing-parent", [{"op": "test", "path": "/spec/x", "value": None}]),
    ("test-missing-non-null", [{"op": "test", "path": "/spec", "value": {}}]),
]


@pytest.mark.parametrize("ops", [o for _, o in JSON_422], ids=[i for i, _ in JSON_422])
def test_json_patch_failures_are_422(ops: list[dict[str, Any]]) -> None:
    before = copy.deepcopy(LIVE)
    with pytest.raises(ApiError) as ei:
        jp(LIVE, ops)
    assert ei.value.code == 422 and ei.value.reason == "Invalid"
    assert LIVE == before


@pytest.mark.parametrize("body,ctype", [
    (b"{not json", JP), (b'{"op": "add"}', JP), (b"[1, 2]", JP), (b"{bad", MP), (b"[]", MP),
], ids=["jp-malformed", "jp-not-list", "jp-not-objects", "mp-malformed", "mp-not-object"])
def test_malformed_bodies_are_400(body: bytes, ctype: str) -> None:
    with pytest.raises(ApiError) as ei:
        apply_patch(LIVE, body, ctype, CM, is_custom=False)
    assert ei.value.code == 400


def test_unknown_media_type_is_415() -> None:
    with pytest.raises(ApiError) as ei:
        apply_patch(LIVE, b"{}", "application/xml", CM, is_custom=False)
    assert ei.value.code == 415


MERGE = [
    ("set-key", {"data": {"z": "1"}}, {**LIVE, "data": {"k": "v", "n": "1", "z": "1"}}),
    ("null-deletes", {"data": {"k": None}}, {**LIVE, "data": {"n": "1"}}),
    ("list-replaces", {"metadata": {"finalizers": ["c"]}},
     {**LIVE, "metadata": {**LIVE["metadata"], "finalizers": ["c"]}}),
    ("new-nested-drops-nulls", {"spec": {"a": {"b": None, "c": 1}}}, {**LIVE, "spec": {"a": {"c": 1}}}),
    ("scalar-over-map", {"data": "x"}, {**LIVE, "data": "x"}),
    ("label-via-kubectl", {"metadata": {"labels": {"app": "x"}}},
     {**LIVE, "metadata": {**LIVE["metadata"], "labels": {"app": "x"}}}),
]


@pytest.mark.parametrize("patch,want", [(p, w) for _, p, w in MERGE], ids=[i for i, _, _ in MERGE])
def test_merge_patch(patch: dict[str, Any], want: dict[str, Any]) -> None:
    before = copy.deepcopy(LIVE)
    assert apply_patch(LIVE, json.dumps(patch).encode(), MP, CM, is_custom=True) == want
    assert LIVE == before


def test_merge_patch_result_shares_nothing_with_inputs() -> None:
    target = {"a": {"b": [1]}, "c": {"d": 1}}
    out = merge_patch(target, {"c": {"e": 2}})
    out["a"]["b"].append(2)
    assert target == {"a": {"b": [1]}, "c": {"d": 1}}


json_values = st.recursive(
    st.one_of(st.booleans(), st.integers(-5, 5), st.text(max_size=3)),  # (no filter: no health-check flakes)
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=3), inner, max_size=3)),
    max_leaves=12)
json_docs = st.dictionaries(st.text(max_size=3), json_values, max_size=4)


@settings(max_examples=150, deadline=None)
@given(json_docs, json_docs)
def test_merge_patch_of_a_diff_reproduces_the_target(src: dict[str, Any], dst: dict[str, Any]) -> None:
    patch = create_merge_patch(src, dst)
    assert merge_patch(src, patch) == dst
    assert apply_patch(src, json.dumps(patch).encode(), MP, CM, is_custom=False) == dst


def escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def json_patch_diff(src: Any, dst: Any, path: str = "") -> list[dict[str, Any]]:
    """RFC 6902 operations turning src into dst (objects recursed, anything else replaced)."""
    if isinstance(src, dict) and isinstance(dst, dict):
        ops: list[dict[str, Any]] = []
        for k in src:
            if k not in dst:
                ops.append({"op": "remove", "path": f"{path}/{escape(k)}"})
        for k, v in dst.items():
            if k not in src:
                ops.append({"op": "add", "path": f"{path}/{escape(k)}", "value": v})
            else:
                ops.extend(json_patch_diff(src[k], v, f"{path}/{escape(k)}"))
        return ops
    if src == dst and type(src) is type(dst):
        return [{"op": "test", "path": path, "value": src}] if path else []
    return [{"op": "replace", "path": path, "value": dst}]


@settings(max_examples=150, deadline=None)
@given(json_docs, json_docs)
def test_json_patch_of_a_diff_reproduces_the_target(src: dict[str, Any], dst: dict[str, Any]) -> None:
    ops = json_patch_diff(src, dst)
    assert apply_patch(src, json.dumps(ops).encode(), JP, CM, is_custom=False) == dst


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(max_size=3), json_values, min_size=1, max_size=4), st.text(max_size=3))
def test_json_patch_move_there_and_back_is_identity(doc: dict[str, Any], new_key: str) -> None:
    key = next(iter(doc))
    if new_key in doc:
        return
    ops = [{"op": "move", "from": f"/{escape(key)}", "path": f"/{escape(new_key)}"},
           {"op": "move", "from": f"/{escape(new_key)}", "path": f"/{escape(key)}"}]
    assert apply_patch(doc, json.dumps(ops).encode(), JP, CM, is_custom=False) == doc
