"""Memory-backed volumes as the kubelet sizes and accounts them (``memory_volumes``), the
projected token's mode and owner (``FsUserFrom`` and the projected plugin's 0600 rule), env
``resourceFieldRef.containerName`` and zero divisors at the node, and a refresh that keeps
going past a failing volume (its message for the ``FailedMount`` Event)."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

from controlplane.agent import podconfig
from controlplane.agent.memory_volumes import is_local_ephemeral, is_memory_backed, memory_backed_size
from controlplane.agent.podconfig import ConfigError, PodConfig, resource_ref, write_atomic
from controlplane.agent.security import fs_user_from
from controlplane.agent.volume_ownership import set_volume_ownership

MI = 2**20


def c(name: str, mem: str | None = None, **sc) -> dict:
    out: dict = {"name": name, "image": "busybox"}
    if mem is not None:
        out["resources"] = {"limits": {"memory": mem}}
    if sc:
        out["securityContext"] = sc
    return out


@pytest.mark.parametrize("spec,alloc,size_limit,want", [
    ({"containers": [c("a")]}, "1Gi", None, 1024 * MI),  # BestEffort: the node's allocatable
    ({"containers": [c("a", "64Mi"), c("b", "32Mi")]}, "1Gi", None, 96 * MI),  # the pod's limit
    ({"containers": [c("a", "64Mi"), c("b")]}, "1Gi", None, 1024 * MI),  # one without: no pod limit
    ({"containers": [c("a", "64Mi")], "overhead": {"memory": "16Mi"}}, "1Gi", None, 80 * MI),
    ({"containers": [c("a", "64Mi")], "initContainers": [c("i", "128Mi")]}, "1Gi", None, 128 * MI),
    ({"containers": [c("a", "2Gi")]}, "1Gi", None, 1024 * MI),  # a limit above allocatable
    ({"containers": [c("a", "64Mi")]}, "1Gi", "8Mi", 8 * MI),  # sizeLimit below the pod's limit
    ({"containers": [c("a", "64Mi")]}, "1Gi", "128Mi", 64 * MI),  # above: the pod's limit wins
    ({"containers": [c("a")]}, "1Gi", "2Gi", 1024 * MI),  # above allocatable
    ({"containers": [c("a")]}, "1Gi", "0", 1024 * MI),  # zero: ignored
    ({"containers": [c("a")]}, None, None, None),  # nothing known: the kernel's default
    ({"containers": [c("a")]}, None, "8Mi", 8 * MI),
], ids=["best-effort", "sum", "one-unlimited", "overhead", "init-larger", "over-alloc", "size-limit",
        "size-over-pod", "size-over-alloc", "size-zero", "unknown", "unknown-with-limit"])
def test_memory_backed_size(spec, alloc, size_limit, want):
    assert memory_backed_size(spec, alloc, size_limit) == want


@pytest.mark.parametrize("volume,memory,local", [
    ({"emptyDir": {}}, False, True),
    ({"emptyDir": {"medium": ""}}, False, True),
    ({"emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}}, True, False),
    ({"configMap": {"name": "c"}}, False, True),  # on disk, as the kubelet's
    ({"secret": {"secretName": "s"}}, True, False),
    ({"downwardAPI": {"items": []}}, True, False),
    ({"projected": {"sources": []}}, True, False),
    ({"hostPath": {"path": "/x"}}, False, False),
    ({"persistentVolumeClaim": {"claimName": "x"}}, False, False),
], ids=["emptydir", "emptydir-default", "emptydir-memory", "configmap", "secret", "downwardapi", "projected",
        "hostpath", "claim"])
def test_kinds(volume, memory, local):
    assert (is_memory_backed(volume), is_local_ephemeral(volume)) == (memory, local)


@pytest.mark.parametrize("spec,want", [
    ({"securityContext": {"runAsUser": 1000}, "containers": [c("a"), c("b")]}, 1000),
    ({"securityContext": {"runAsUser": 1000}, "containers": [c("a", runAsUser=2000)]}, 2000),
    ({"containers": [c("a", runAsUser=1000), c("b", runAsUser=1000)]}, 1000),
    ({"containers": [c("a", runAsUser=1000), c("b")]}, None),  # one without
    ({"containers": [c("a", runAsUser=1000), c("b", runAsUser=1001)]}, None),  # two differ
    ({"securityContext": {"runAsUser": 1000}, "containers": [c("a")], "initContainers": [c("i", runAsUser=0)]}, None),
    ({"securityContext": {"runAsUser": 1000}, "containers": [c("a")],
      "ephemeralContainers": [{"name": "d", "securityContext": {"runAsUser": 5}}]}, 1000),  # not counted
    ({"containers": [c("a")]}, None),
], ids=["pod", "container-wins", "same", "one-unset", "differ", "init-differs", "ephemeral", "none"])
def test_fs_user_from(spec, want):
    assert fs_user_from({"spec": spec}) == want


class _Tokens:
    """The token manager's one call a projected volume makes (a real TokenRequest needs an
    apiserver: tests/integration/test_agent_security.py)."""

    async def get(self, pod: dict, source: dict) -> str:
        return "header.payload.sig"


def _token_pod(psc: dict) -> dict:
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
            "spec": {"securityContext": psc, "containers": [c("a", "32Mi")], "volumes": [
                {"name": "tok", "projected": {"defaultMode": 0o644, "sources": [
                    {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}},
                    {"downwardAPI": {"items": [{"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}}]}}]}}


@pytest.mark.parametrize("psc,token_mode,token_uid,name_mode", [
    ({}, 0o644, 0, 0o644),  # neither: the volume's defaultMode
    ({"runAsUser": 1000}, 0o600, 1000, 0o644),  # fsUser: 0600, owned by it
    ({"fsGroup": 2000}, 0o640, 0, 0o644),  # fsGroup: 0600, then the group walk adds g+r
    ({"runAsUser": 1000, "fsGroup": 2000}, 0o640, 1000, 0o644),
], ids=["plain", "run-as-user", "fs-group", "both"])
def test_projected_token_mode_and_owner(tmp_path, monkeypatch, psc, token_mode, token_uid, name_mode):
    if os.geteuid() != 0:
        pytest.skip("chown needs root")
    mounted: list[tuple[Path, int | None]] = []

    async def no_mount(target: Path, size: int | None) -> None:  # the mount itself: integration tests
        mounted.append((target, size))
    monkeypatch.setattr(podconfig, "mount_tmpfs", no_mount)
    pc = PodConfig(None, _token_pod(psc), "n1", None, _Tokens(), allocatable={"memory": "1Gi"})  # type: ignore[arg-type]
    vols = asyncio.run(pc.prepare_volumes(tmp_path, None))
    assert mounted == [(tmp_path / "tok", 32 * MI)]  # the pod's memory limit bounds the tmpfs
    st = (vols["tok"] / "token").stat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid) == (token_mode, token_uid)
    assert stat.S_IMODE((vols["tok"] / "name").stat().st_mode) == name_mode | (0o040 if "fsGroup" in psc else 0)
    # an unchanged payload is not rewritten (the owner is part of it)
    data = os.readlink(vols["tok"] / "..data")
    asyncio.run(pc.prepare_volumes(tmp_path, None, refresh=True))
    assert os.readlink(vols["tok"] / "..data") == data


def test_read_only_kinds_are_walked_whatever_the_change_policy(tmp_path):
    """The configMap/secret/downwardAPI/projected plugins pass no fsGroupChangePolicy: a new
    file in a root that already matches still gets the group."""
    if os.geteuid() != 0:
        pytest.skip("chown needs root")
    pod = {"metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
           "spec": {"securityContext": {"fsGroup": 2000, "fsGroupChangePolicy": "OnRootMismatch"},
                    "containers": [c("a")], "volumes": [{"name": "cm", "configMap": {"name": "cm"}}]}}
    pc = PodConfig(None, pod, "n1", None)  # type: ignore[arg-type]
    pc._cache[("configmap", "cm")] = {"data": {"a": "1"}}
    asyncio.run(pc.prepare_volumes(tmp_path, None))
    pc = PodConfig(None, pod, "n1", None)  # type: ignore[arg-type]
    pc._cache[("configmap", "cm")] = {"data": {"a": "1", "b": "2"}}
    asyncio.run(pc.prepare_volumes(tmp_path, None, refresh=True))
    st = (tmp_path / "cm" / "b").stat()
    assert st.st_gid == 2000 and stat.S_IMODE(st.st_mode) == 0o644 | 0o040
    assert not set_volume_ownership(tmp_path / "cm", 2000, "OnRootMismatch", True)  # the root does match


def test_write_atomic_owners(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("chown needs root")
    v = tmp_path / "v"
    assert write_atomic(v, {"token": (b"t", 0o600), "ca.crt": (b"c", 0o644)}, owners={"token": 1234})
    assert (v / "token").stat().st_uid == 1234 and (v / "ca.crt").stat().st_uid == 0
    assert not write_atomic(v, {"token": (b"t", 0o600), "ca.crt": (b"c", 0o644)}, owners={"token": 1234})
    assert write_atomic(v, {"token": (b"t", 0o600), "ca.crt": (b"c", 0o644)})  # the owner changed: rewritten
    assert (v / "token").stat().st_uid == 0


def test_a_refresh_tries_every_volume_and_reports_each_failure(tmp_path):
    """A key an ``items`` entry names was removed: that volume keeps its files, the others
    are brought up to date, and the kubelet's message is kept for the FailedMount Event."""
    pod = {"metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
           "spec": {"containers": [c("a")], "volumes": [
               {"name": "items", "configMap": {"name": "cm", "items": [{"key": "k", "path": "k"}]}},
               {"name": "all", "configMap": {"name": "cm"}}]}}
    pc = PodConfig(None, pod, "n1", None)  # type: ignore[arg-type]
    pc._cache[("configmap", "cm")] = {"data": {"k": "1"}}
    asyncio.run(pc.prepare_volumes(tmp_path, None))
    pc = PodConfig(None, pod, "n1", None)  # type: ignore[arg-type]
    pc._cache[("configmap", "cm")] = {"data": {"other": "2"}}
    with pytest.raises(ConfigError, match='^MountVolume.SetUp failed for volume "items" : configmap references '
                                          'non-existent config key: k$'):
        asyncio.run(pc.prepare_volumes(tmp_path, None))  # a first set-up stops at the failure
    pc = PodConfig(None, pod, "n1", None)  # type: ignore[arg-type]
    pc._cache[("configmap", "cm")] = {"data": {"other": "2"}}
    asyncio.run(pc.prepare_volumes(tmp_path, None, refresh=True))
    assert pc.failed_mounts == ['MountVolume.SetUp failed for volume "items" : configmap references '
                                'non-existent config key: k']
    assert (tmp_path / "items" / "k").read_text() == "1"  # kept
    assert sorted(os.listdir(tmp_path / "all"))[-1] == "other" and not (tmp_path / "all" / "k").exists()


POD = {"metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
       "spec": {"containers": [{"name": "app", "resources": {"limits": {"cpu": "500m", "memory": "64Mi"}}},
                               {"name": "side", "resources": {"limits": {"memory": "32Mi"}}}],
                "initContainers": [{"name": "init", "resources": {"limits": {"cpu": "250m"}}}]}}


@pytest.mark.parametrize("ref,want", [
    ({"resource": "limits.memory", "divisor": "1Mi"}, "64"),  # this container's
    ({"resource": "limits.memory", "divisor": "1Mi", "containerName": "side"}, "32"),  # the named one's
    ({"resource": "limits.cpu", "divisor": "1m", "containerName": "init"}, "250"),  # an init container's
    ({"resource": "limits.cpu", "divisor": "1m", "containerName": "side"}, "2000"),  # unset: allocatable
    ({"resource": "limits.memory", "divisor": "0"}, str(64 * MI)),  # zero (the stored unset) is 1
    ({"resource": "limits.cpu", "divisor": "0"}, "1"),
], ids=["own", "named", "init", "named-unset", "zero-memory", "zero-cpu"])
def test_env_resource_field_ref_container_name(ref, want):
    pc = PodConfig(None, POD, "n1", None, allocatable={"cpu": "2", "memory": "1Gi"})  # type: ignore[arg-type]
    env = asyncio.run(pc.env(POD["spec"]["containers"][0], {}))
    assert env == []
    env = asyncio.run(pc.env({**POD["spec"]["containers"][0], "env": [{"name": "V", "valueFrom": {"resourceFieldRef": ref}}]}))
    assert env == [f"V={want}"]


def test_env_resource_field_ref_names_a_missing_container():
    """The kubelet's ``findContainerInPod`` error: CreateContainerConfigError."""
    pc = PodConfig(None, POD, "n1", None)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="^container nope not found$") as e:
        asyncio.run(pc.env({"name": "app", "env": [{"name": "V", "valueFrom": {"resourceFieldRef": {
            "resource": "limits.cpu", "containerName": "nope"}}}]}))
    assert e.value.reason == "CreateContainerConfigError"
    assert resource_ref({"name": "x"}, {"resource": "requests.memory", "divisor": "0"}) == "0"
