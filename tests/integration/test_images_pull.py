"""Pulling from a real docker-registry: busybox through the docker.io mirror, shared cache,
pull policies, a missing image, a blob with the wrong digest, Docker media types, an index."""

from __future__ import annotations

import hashlib
import json

import pytest

from controlplane.images.manager import ImageError, ImageManager
from controlplane.images.reference import Mirrors
from controlplane.images.registry import busybox_image, push_blob, push_manifest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60), pytest.mark.asyncio(loop_scope="session")]


def manager(tmp_path, reg, **kw) -> ImageManager:
    return ImageManager(tmp_path / "images", Mirrors({"docker.io": [reg.url]}), **kw)


async def test_pull_busybox_through_mirror_and_cache(tmp_path, local_registry):
    m = manager(tmp_path, local_registry)
    rec, rootfs = await m.ensure("busybox", "IfNotPresent")
    assert (rootfs / "bin" / "busybox").stat().st_size > 100_000
    assert (rootfs / "bin" / "sh").is_symlink()
    rec2, rootfs2 = await m.ensure("library/busybox:1.36")
    assert rec2.id == rec.id and rootfs2 == rootfs  # same image id: one unpacked rootfs shared
    blobs = sorted(p.name for p in m.store.blobs.iterdir())
    assert len(blobs) == 2  # one layer + config, content addressed
    for name in blobs:
        assert hashlib.sha256((m.store.blobs / name).read_bytes()).hexdigest() == name


async def test_policy_never_and_missing_image(tmp_path, local_registry):
    m = manager(tmp_path, local_registry, backoff_initial=10)
    with pytest.raises(ImageError) as ei:
        await m.ensure("busybox:1.36", "Never")
    assert ei.value.reason == "ErrImageNeverPull"
    with pytest.raises(ImageError) as ei:
        await m.ensure("no-such-image:v1", "IfNotPresent")
    assert ei.value.reason == "ErrImagePull" and "not found" in ei.value.message
    with pytest.raises(ImageError) as ei:  # within the backoff window
        await m.ensure("no-such-image:v1", "IfNotPresent")
    assert ei.value.reason == "ImagePullBackOff"
    with pytest.raises(ImageError) as ei:
        await m.ensure("Bad Name", "IfNotPresent")
    assert ei.value.reason == "InvalidImageName"


async def test_wrong_blob_digest_is_an_error(tmp_path, local_registry):
    layer, config, manifest = busybox_image()
    # A different image whose layer blob is then corrupted in the registry's storage.
    bad_layer = layer + b"\0" * 16  # still a valid blob upload; we corrupt it after the push
    repo = "corrupt/busybox"
    ld = push_blob(local_registry.url, repo, bad_layer)
    cd = push_blob(local_registry.url, repo, config)
    doc = json.loads(manifest)
    doc["layers"][0].update(digest=ld, size=len(bad_layer))
    doc["config"]["digest"] = cd
    push_manifest(local_registry.url, repo, "v1", json.dumps(doc).encode())
    data = local_registry.blob_data_path(ld)
    data.write_bytes(b"tampered" + bad_layer[8:])
    m = manager(tmp_path, local_registry)
    with pytest.raises(ImageError) as ei:
        await m.ensure("corrupt/busybox:v1", "IfNotPresent")
    assert ei.value.reason == "ErrImagePull"
    assert "digest mismatch" in ei.value.message and ld in ei.value.message
    assert not m.store.has_blob(ld)
    assert list(m.store.tmp.iterdir()) == []


async def test_docker_media_types_and_index(tmp_path, local_registry):
    layer, config, manifest = busybox_image()
    doc = json.loads(manifest)
    doc["mediaType"] = "application/vnd.docker.distribution.manifest.v2+json"
    doc["config"]["mediaType"] = "application/vnd.docker.container.image.v1+json"
    doc["layers"][0]["mediaType"] = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    repo = "dockerfmt/busybox"
    push_blob(local_registry.url, repo, layer)
    push_blob(local_registry.url, repo, config)
    body = json.dumps(doc).encode()
    push_manifest(local_registry.url, repo, "v2", body, doc["mediaType"])
    dgst = "sha256:" + hashlib.sha256(body).hexdigest()
    index = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
             "manifests": [{"mediaType": doc["mediaType"], "digest": dgst, "size": len(body),
                            "platform": {"os": "linux", "architecture": "amd64"}}]}
    push_manifest(local_registry.url, repo, "multi", json.dumps(index).encode(), index["mediaType"])
    m = manager(tmp_path, local_registry)
    rec, rootfs = await m.ensure(f"{local_registry.host}/{repo}:multi", "Always")
    assert rec.manifest == dgst and (rootfs / "bin" / "busybox").exists()
    rec2, _ = await m.ensure(f"{local_registry.host}/{repo}@{dgst}", "IfNotPresent")
    assert rec2.id == rec.id


async def test_gc_removes_unused_images(tmp_path, local_registry):
    m = manager(tmp_path, local_registry)
    rec, rootfs = await m.ensure("busybox:1.36", "IfNotPresent")
    assert m.store.gc(in_use={rec.ref}, bytes_to_free=1 << 40) == []
    assert rootfs.exists()
    removed = m.store.gc(in_use=set(), bytes_to_free=1)
    assert removed == [rec.ref] and not rootfs.exists() and list(m.store.blobs.iterdir()) == []
