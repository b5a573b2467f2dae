"""containers/common's profile conversion (``runtime/seccomp.py``) on a small sample, on the
real ``/usr/share/containers/seccomp.json``, and in the OCI config (``oci.build_config``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlplane.runtime import oci, seccomp
from controlplane.runtime.interface import ContainerSpec, Sandbox

SAMPLE = {
    "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
    "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
                {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}],
    "syscalls": [
        {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
        {"name": "personality", "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]},
        {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64", "x32"]}},
        {"names": ["bpf"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["bpf"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["new_call"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "5.8"}},
        {"names": ["old_call"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "5.8"}},
        {"names": ["not_on_arm"], "action": "SCMP_ACT_ALLOW", "excludes": {"arches": ["arm64"]}},
    ],
}


def names(out):
    return [(tuple(s["names"]), s["action"]) for s in out["syscalls"]]


@pytest.mark.parametrize("caps,arch,kernel,archs,kept", [
    (oci.DEFAULT_CAPS, "amd64", (6, 1), ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
     [(("read", "write"), "SCMP_ACT_ALLOW"), (("personality",), "SCMP_ACT_ALLOW"), (("arch_prctl",), "SCMP_ACT_ALLOW"),
      (("bpf",), "SCMP_ACT_ERRNO"), (("new_call",), "SCMP_ACT_ALLOW"), (("not_on_arm",), "SCMP_ACT_ALLOW")]),
    (oci.ALL_CAPS, "arm64", (5, 4), ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
     [(("read", "write"), "SCMP_ACT_ALLOW"), (("personality",), "SCMP_ACT_ALLOW"), (("bpf",), "SCMP_ACT_ALLOW"),
      (("old_call",), "SCMP_ACT_ALLOW")]),
], ids=["amd64-default-caps-new-kernel", "arm64-all-caps-old-kernel"])
def test_sample_profile(caps, arch, kernel, archs, kept):
    out = seccomp.to_oci(SAMPLE, caps, arch, kernel)
    assert out is not None
    assert out["defaultAction"] == "SCMP_ACT_ERRNO" and out["defaultErrnoRet"] == 38
    assert out["architectures"] == archs
    assert names(out) == kept
    pers = next(s for s in out["syscalls"] if s["names"] == ["personality"])
    assert pers["args"] == [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]
    bpf = next(s for s in out["syscalls"] if s["names"] == ["bpf"])
    assert bpf.get("errnoRet") == (1 if arch == "amd64" else None)


@pytest.mark.parametrize("profile,error", [
    ({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"], "archMap": [{}]},
     "both 'architectures' and 'archMap'"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"name": "a", "names": ["b"], "action": "SCMP_ACT_ALLOW"}]},
     "'name' and 'names'"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["a"], "includes": {"minKernel": "five"}}]},
     "invalid kernel version"),
])
def test_refused_profiles(profile, error):
    with pytest.raises(seccomp.SeccompError, match=error):
        seccomp.to_oci(profile, [], "amd64", (6, 1))


def test_oci_profile_passes_through():
    prof = {"defaultAction": "SCMP_ACT_LOG", "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
    assert seccomp.to_oci(prof, [], "amd64", (6, 1)) == prof
    assert seccomp.to_oci({}, [], "amd64", (6, 1)) is None


@pytest.mark.skipif(not seccomp.DEFAULT_PROFILE.exists(), reason="golang-github-containers-common not installed")
def test_real_default_profile():
    prof = seccomp.load_profile(seccomp.DEFAULT_PROFILE)
    out = seccomp.to_oci(prof, oci.DEFAULT_CAPS, "amd64", (6, 1))
    assert out is not None and out["defaultAction"] == "SCMP_ACT_ERRNO" and out["defaultErrnoRet"] == 38
    assert out["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    allowed = {n for s in out["syscalls"] if s["action"] == "SCMP_ACT_ALLOW" and not s.get("args") for n in s["names"]}
    assert {"read", "write", "execve", "arch_prctl", "chroot"} <= allowed  # chroot: CAP_SYS_CHROOT is a default cap
    assert not {"bpf", "kexec_load", "add_key", "s390_runtime_instr"} & allowed
    denied = {n for s in out["syscalls"] if s["action"] == "SCMP_ACT_ERRNO" for n in s["names"]}
    assert {"bpf", "kexec_load"} <= denied
    assert all("includes" not in s and "excludes" not in s and "comment" not in s for s in out["syscalls"])
    assert all(set(a) <= {"index", "value", "valueTwo", "op"} for s in out["syscalls"] for a in s.get("args") or [])
    full = seccomp.to_oci(prof, oci.ALL_CAPS, "amd64", (6, 1))
    assert full is not None
    assert "bpf" in {n for s in full["syscalls"] if s["action"] == "SCMP_ACT_ALLOW" for n in s["names"]}


SB = Sandbox(id="u", uid="u", hostname="h", netns="/run/netns/x", ip=None, pod_dir=Path("/p"))


@pytest.mark.parametrize("kw,has_seccomp", [
    ({}, False), ({"seccomp": SAMPLE}, True), ({"seccomp": SAMPLE, "privileged": True}, False),
], ids=["unconfined", "profile", "privileged-skips"])
def test_build_config_security(kw, has_seccomp):
    spec = ContainerSpec(name="c", rootfs=Path("/i"), args=["sh"], uid=1000, gid=3000, additional_gids=[3000, 2000],
                         no_new_privileges=True, sysctls={"net.ipv4.tcp_syncookies": "0"}, **kw)
    cfg = oci.build_config(spec, SB, "/b/rootfs", "/cg")
    assert cfg["process"]["user"] == {"uid": 1000, "gid": 3000, "additionalGids": [3000, 2000]}
    assert cfg["process"]["noNewPrivileges"] is True
    assert cfg["linux"]["sysctl"] == {"net.ipv4.tcp_syncookies": "0"}
    assert ("seccomp" in cfg["linux"]) is has_seccomp
