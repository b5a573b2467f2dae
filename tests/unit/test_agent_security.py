"""The kubelet's security-context rules (``agent/security.py``): runAsNonRoot against the
effective user, the process user and groups as containerd resolves them from the image,
noNewPrivileges, the seccomp profile choice and the sysctl allowlist of the admission."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlplane.agent import security

POD = {"metadata": {"name": "p", "namespace": "ns", "uid": "u-1"}}
ROOT = 'container has runAsNonRoot and image will run as root (pod: "p_ns(u-1)", container: c)'


@pytest.mark.parametrize("pod_sc,sc,image_user,refused", [
    ({}, {}, "", None),
    ({"runAsNonRoot": True}, {}, "", ROOT),
    ({}, {"runAsNonRoot": True}, "0", ROOT),
    ({"runAsNonRoot": True}, {}, "root", 'container has runAsNonRoot and image has non-numeric user (root), cannot '
                                        'verify user is non-root (pod: "p_ns(u-1)", container: c)'),
    ({"runAsNonRoot": True}, {}, "1000", None),
    ({"runAsNonRoot": True}, {}, "1000:0", None),
    ({"runAsNonRoot": True, "runAsUser": 1000}, {}, "", None),
    ({"runAsNonRoot": True}, {"runAsUser": 1000}, "root", None),
    ({"runAsNonRoot": True, "runAsUser": 1000}, {"runAsUser": 0}, "",
     'container\'s runAsUser breaks non-root policy (pod: "p_ns(u-1)", container: c)'),
    ({"runAsNonRoot": True}, {"runAsNonRoot": False}, "", None),
], ids=["unset", "pod-image-default-root", "container-image-uid0", "image-name", "image-uid", "image-uid-gid",
        "pod-runasuser", "container-runasuser-wins", "container-runasuser-0", "container-overrides-pod"])
def test_run_as_non_root(pod_sc, sc, image_user, refused):
    eff = security.effective(pod_sc, sc)
    assert security.verify_run_as_non_root(POD, "c", eff, *security.image_user({"User": image_user})) == refused


DB = security.Passwd.parse("root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/app:/bin/sh\n",
                           "root:x:0:\napp:x:1000:\nwheel:x:10:root,app\naudio:x:29:app\n")


@pytest.mark.parametrize("eff,image,supp,expect", [
    ({}, "", [], (0, 0, [0, 10])),
    ({"runAsUser": 1000}, "", [], (1000, 1000, [1000, 10, 29])),
    ({"runAsUser": 1000, "runAsGroup": 3000}, "", [2000, 4000], (1000, 3000, [3000, 10, 29, 2000, 4000])),
    ({"runAsUser": 4242}, "", [5], (4242, 0, [0, 5])),
    ({}, "app", [], (1000, 1000, [1000, 10, 29])),
    ({}, "1000:wheel", [], (1000, 10, [10, 29])),
    ({"runAsGroup": 7}, "app", [], (1000, 7, [7, 10, 29])),
], ids=["root", "uid-from-passwd", "uid-gid-supplemental", "unknown-uid-gid-0", "image-name", "image-uid-group-name",
        "image-name-runasgroup"])
def test_process_user(eff, image, supp, expect):
    assert security.process_user(security.user_string(eff, {"User": image}), DB, supp) == expect


def test_process_user_unknown_name():
    with pytest.raises(security.UserError, match="unable to find user ghost"):
        security.process_user("ghost", DB, [])


@pytest.mark.parametrize("pod_sc,groups", [
    ({}, []), ({"fsGroup": 2000}, [2000]), ({"fsGroup": 2000, "supplementalGroups": [4000, 5000]}, [2000, 4000, 5000]),
    ({"supplementalGroups": [1]}, [1]),
])
def test_supplemental_groups(pod_sc, groups):
    assert security.supplemental_groups(pod_sc) == groups


@pytest.mark.parametrize("sc,nnp", [
    (None, False), ({}, False), ({"allowPrivilegeEscalation": True}, False),
    ({"allowPrivilegeEscalation": False}, True), ({"allowPrivilegeEscalation": False, "runAsUser": 1}, True),
], ids=["none", "unset", "true", "false", "false-with-others"])
def test_no_new_privileges(sc, nnp):
    assert security.no_new_privileges(sc) is nnp


@pytest.mark.parametrize("pod_sc,sc,default,kind,path", [
    ({}, {}, False, "Unconfined", None),
    ({}, {}, True, "RuntimeDefault", None),
    ({"seccompProfile": {"type": "RuntimeDefault"}}, {}, False, "RuntimeDefault", None),
    ({"seccompProfile": {"type": "RuntimeDefault"}}, {"seccompProfile": {"type": "Unconfined"}}, True, "Unconfined", None),
    ({}, {"seccompProfile": {"type": "Localhost", "localhostProfile": "profiles/a.json"}}, False, "Localhost",
     Path("/r/seccomp/profiles/a.json")),
], ids=["default-off", "seccomp-default", "pod-level", "container-wins", "localhost"])
def test_seccomp_choice(pod_sc, sc, default, kind, path):
    ch = security.seccomp_choice(pod_sc, sc, default, Path("/r/seccomp"))
    assert (ch.kind, ch.path) == (kind, path)


def test_seccomp_localhost_needs_a_profile():
    with pytest.raises(ValueError, match="localhostProfile must be set"):
        security.seccomp_choice({}, {"seccompProfile": {"type": "Localhost"}}, False, Path("/r"))


def _pod(sysctls, **spec):
    return {"spec": {"securityContext": {"sysctls": [{"name": n, "value": "1"} for n in sysctls]}, **spec}}


@pytest.mark.parametrize("unsafe,sysctls,spec,msg", [
    ([], ["kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_keepalive_probes"], {}, None),
    ([], ["net/ipv4/tcp_syncookies"], {}, None),
    ([], ["kernel.msgmax"], {}, 'forbidden sysctl: "kernel.msgmax" not allowlisted'),
    (["kernel.msg*"], ["kernel.msgmax"], {}, None),
    (["net.core.somaxconn"], ["net.core.somaxconn"], {}, None),
    (["net.core.somaxconn"], ["net.core.rmem_max"], {}, 'forbidden sysctl: "net.core.rmem_max" not allowlisted'),
    ([], ["net.ipv4.tcp_syncookies"], {"hostNetwork": True},
     'forbidden sysctl: "net.ipv4.tcp_syncookies" not allowed with host Net enabled'),
    ([], [], {}, None),
], ids=["safe", "slashes", "unsafe", "unsafe-pattern", "unsafe-exact", "unsafe-other", "host-network", "none"])
def test_sysctl_admission(unsafe, sysctls, spec, msg):
    assert security.SysctlAllowlist(unsafe).admit(_pod(sysctls, **spec)) == msg


@pytest.mark.parametrize("pattern,error", [
    ("vm.swappiness", 'the sysctls "vm.swappiness" are not known to be namespaced'),
    ("Kernel.X", "must have at most 253 characters"),
])
def test_sysctl_allowlist_refuses(pattern, error):
    with pytest.raises(ValueError, match=error):
        security.SysctlAllowlist([pattern])


@pytest.mark.parametrize("name,normal", [
    ("net.ipv4.tcp_syncookies", "net.ipv4.tcp_syncookies"),
    ("net/ipv4/conf/eno2.100/rp_filter", "net.ipv4.conf.eno2/100.rp_filter"),
])
def test_normalize_name(name, normal):
    assert security.normalize_name(name) == normal
