"""ObjectMeta's collections are omitempty: empty ones are neither stored nor served."""

from __future__ import annotations

import pytest

from controlplane.apiserver.strategy.generic import omit_empty_meta


@pytest.mark.parametrize("meta, want", [
    ({"name": "a", "labels": {}, "annotations": {}}, {"name": "a"}),
    ({"name": "a", "finalizers": [], "ownerReferences": []}, {"name": "a"}),
    ({"name": "a", "annotations": None}, {"name": "a"}),
    ({"name": "a", "labels": {"x": "1"}, "annotations": {}}, {"name": "a", "labels": {"x": "1"}}),
    ({"name": "a", "finalizers": ["f"]}, {"name": "a", "finalizers": ["f"]}),
    ({"name": "a", "managedFields": []}, {"name": "a", "managedFields": []}),  # handled by managed fields
])
def test_empty_meta_collections_are_dropped(meta, want):
    obj = {"metadata": dict(meta), "data": {}}
    omit_empty_meta(obj)
    assert obj == {"metadata": want, "data": {}}


def test_object_without_metadata_is_left_alone():
    obj = {"kind": "X"}
    omit_empty_meta(obj)
    assert obj == {"kind": "X"}
