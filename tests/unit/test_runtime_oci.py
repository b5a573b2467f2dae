"""OCI config generation: capabilities, cgroup resources from limits/requests, mounts, netns."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlplane.runtime import oci
from controlplane.runtime.interface import ContainerSpec, Mount, Sandbox

SB = Sandbox(id="u", uid="u", hostname="pod-x", netns="/run/netns/cpp-x", ip="10.0.0.2", pod_dir=Path("/p"))


def spec(**kw) -> ContainerSpec:
    return ContainerSpec(name="c", rootfs=Path("/img"), args=["sh"], **kw)


@pytest.mark.parametrize("add,drop,privileged,has,lacks", [
    ([], [], False, ["CAP_CHOWN", "CAP_KILL"], ["CAP_SYS_ADMIN"]),
    (["NET_ADMIN"], [], False, ["CAP_NET_ADMIN"], []),
    ([], ["ALL"], False, [], ["CAP_CHOWN", "CAP_KILL"]),
    (["NET_BIND_SERVICE"], ["ALL"], False, ["CAP_NET_BIND_SERVICE"], ["CAP_CHOWN"]),
    ([], ["chown"], False, ["CAP_KILL"], ["CAP_CHOWN"]),
    ([], [], True, ["CAP_SYS_ADMIN"], []),
], ids=["default", "add", "drop-all", "drop-all-add-one", "drop-lowercase", "privileged"])
def test_capabilities(add, drop, privileged, has, lacks):
    caps = oci.capabilities(spec(cap_add=add, cap_drop=drop, privileged=privileged))
    assert all(c in caps for c in has) and not any(c in caps for c in lacks)


@pytest.mark.parametrize("req,lim,shares", [(None, None, 2), (250, None, 256), (None, 1000, 1024), (1, None, 2), (100, 2000, 102)])
def test_cpu_shares(req, lim, shares):
    assert oci.cpu_shares(req, lim) == shares


@pytest.mark.parametrize("kw,expect", [
    ({"memory_limit": 64 << 20}, {"memory": {"limit": 64 << 20, "swap": 64 << 20}}),
    ({"cpu_limit_milli": 500}, {"cpu": {"shares": 512, "quota": 50000, "period": 100000}}),
    ({"pids_limit": 10}, {"pids": {"limit": 10}}),
    ({}, {"cpu": {"shares": 2}}),
], ids=["memory", "cpu-quota", "pids", "none"])
def test_resources(kw, expect):
    res = oci.resources(spec(**kw))
    for k, v in expect.items():
        assert res[k] == v
    if "memory_limit" not in kw:
        assert "memory" not in res


def test_config_shape():
    cfg = oci.build_config(spec(env=["A=1"], uid=1000, gid=1000, cwd="/w", readonly_rootfs=True,
                                mounts=[Mount("/data", "/host/data", readonly=True)]), SB, "/b/rootfs", "/cp/n/podu/c")
    assert cfg["process"]["terminal"] is False
    assert cfg["process"]["user"] == {"uid": 1000, "gid": 1000}
    assert cfg["process"]["env"][0].startswith("PATH=") and "A=1" in cfg["process"]["env"]
    assert "HOSTNAME=pod-x" in cfg["process"]["env"]
    assert cfg["root"] == {"path": "/b/rootfs", "readonly": True}
    assert cfg["hostname"] == "pod-x"
    assert {"type": "network", "path": "/run/netns/cpp-x"} in cfg["linux"]["namespaces"]
    assert cfg["linux"]["cgroupsPath"] == "/cp/n/podu/c"
    dests = {m["destination"]: m for m in cfg["mounts"]}
    assert dests["/etc/hostname"]["source"] == "/p/etc/hostname"
    assert "ro" in dests["/data"]["options"]
