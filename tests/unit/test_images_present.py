"""``ImageManager.present``: whether a container start pulls (the kubelet's Pulling/Pulled
events) or finds the image "already present on machine"."""

from __future__ import annotations

import pytest

from controlplane.images import reference
from controlplane.images.manager import ImageManager
from controlplane.images.store import ImageRecord


@pytest.fixture
def manager(tmp_path):
    m = ImageManager(tmp_path, reference.Mirrors({}), clock=lambda: 100.0)
    for image, rid in (("busybox:1.36", "sha256:" + "a" * 64), ("busybox", "sha256:" + "b" * 64)):
        m.store.put(ImageRecord(ref=str(reference.parse(image)), id=rid, manifest="sha256:m"))
        m.store.rootfs_path(rid).mkdir(parents=True)
        (m.store.rootfs_path(rid) / ".complete").touch()  # an unpacked image
    return m


@pytest.mark.parametrize("image, policy, ttl, fresh, want", [
    ("busybox:1.36", None, 0.0, None, True),          # a tag: IfNotPresent by default
    ("busybox:1.36", "Always", 0.0, None, False),     # Always pulls
    ("busybox", None, 0.0, None, False),              # :latest: Always by default
    ("busybox", None, 60.0, 90.0, True),              # pulled 10 s ago, inside the Always TTL
    ("busybox", None, 5.0, 90.0, False),              # outside it
    ("busybox:1.37", "IfNotPresent", 0.0, None, False),  # not in the store
    ("busybox:1.36", "Never", 0.0, None, True),
    ("Not a Reference!", None, 0.0, None, False),
])
def test_present(manager, image, policy, ttl, fresh, want):
    if fresh is not None:
        manager._fresh[str(reference.parse(image))] = fresh
    assert manager.present(image, policy, ttl) is want
