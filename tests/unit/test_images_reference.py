"""Image reference normalisation, mirrors, pull-policy defaults, platform choice, backoff."""

from __future__ import annotations

import pytest

from controlplane.images import reference
from controlplane.images.manager import Backoff, default_policy
from controlplane.images.puller import PullError, pick_platform


@pytest.mark.parametrize("ref,domain,path,tag,digest", [
    ("busybox", "docker.io", "library/busybox", "latest", None),
    ("library/busybox:1.36", "docker.io", "library/busybox", "1.36", None),
    ("docker.io/foo/bar:v1", "docker.io", "foo/bar", "v1", None),
    ("127.0.0.1:5000/x/y:t", "127.0.0.1:5000", "x/y", "t", None),
    ("localhost/app", "localhost", "app", "latest", None),
    ("quay.io/a/b@sha256:" + "a" * 64, "quay.io", "a/b", None, "sha256:" + "a" * 64),
    ("busybox:1@sha256:" + "b" * 64, "docker.io", "library/busybox", "1", "sha256:" + "b" * 64),
])
def test_parse(ref, domain, path, tag, digest):
    r = reference.parse(ref)
    assert (r.domain, r.path, r.tag, r.digest) == (domain, path, tag, digest)


@pytest.mark.parametrize("bad", ["", "UPPER/case", "busybox:", "a@sha256:xyz", " busybox", "x//y"])
def test_parse_rejects(bad):
    with pytest.raises(reference.InvalidReference):
        reference.parse(bad)


def test_mirrors():
    m = reference.Mirrors({"docker.io": ["http://127.0.0.1:5000"]})
    assert m.for_domain("docker.io") == ["http://127.0.0.1:5000"]
    assert m.for_domain("127.0.0.1:6000") == ["http://127.0.0.1:6000"]
    assert m.for_domain("quay.io") == ["https://quay.io"]


@pytest.mark.parametrize("image,policy", [
    ("busybox", "Always"), ("busybox:latest", "Always"), ("busybox:1.36", "IfNotPresent"),
    ("busybox@sha256:" + "c" * 64, "IfNotPresent"),
])
def test_default_policy(image, policy):
    assert default_policy(image) == policy


def test_pick_platform():
    idx = {"manifests": [
        {"digest": "sha256:1", "platform": {"os": "linux", "architecture": "arm64"}},
        {"digest": "sha256:2", "platform": {"os": "linux", "architecture": "amd64"}},
    ]}
    assert pick_platform(idx, arch="amd64")["digest"] == "sha256:2"
    with pytest.raises(PullError):
        pick_platform(idx, arch="s390x")


def test_backoff_doubles_to_cap():
    b = Backoff(10, 300)
    delays = []
    for _ in range(7):
        b.fail(0.0, "x")
        delays.append(b.next_try)
    assert delays == [10, 20, 40, 80, 160, 300, 300]
