"""The kubelet's security-context rules, pure (unit-tested): the effective container security
context (``securitycontext.DetermineEffectiveSecurityContext``), the image's user and the
process user as containerd resolves it (``WithUser``/``WithUserID``/``WithAdditionalGIDs``
over the image's ``/etc/passwd`` and ``/etc/group``), ``runAsNonRoot``
(``verifyRunAsNonRoot``), ``noNewPrivileges`` (``AddNoNewPrivileges``), the seccomp profile
to apply (``getSeccompProfile``), the supplemental groups (fsGroup + supplementalGroups), the
volumes' fsUser (``FsUserFrom``: projected service account tokens) and
the sysctl allowlist of the kubelet's admission (``pkg/kubelet/sysctl``).
Neighbours: ``containers.py`` (per container), ``pod_worker.py`` (sysctl admission),
``cmd/agent.py`` (``--allowed-unsafe-sysctls``), ``controlplane/runtime/oci.py`` (the spec).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# fields the pod-level securityContext supplies when the container does not set them
_INHERITED = ("seLinuxOptions", "windowsOptions", "runAsUser", "runAsGroup", "runAsNonRoot",
              "seccompProfile", "appArmorProfile")


def effective(pod_sc: dict[str, Any] | None, sc: dict[str, Any] | None) -> dict[str, Any]:
    """The container's security context with the pod's defaults filled in."""
    out = dict(sc or {})
    for k in _INHERITED:
        if k not in out and k in (pod_sc or {}):
            out[k] = (pod_sc or {})[k]
    return out


def pod_desc(pod: dict[str, Any]) -> str:
    """The kubelet's ``format.Pod``: ``name_namespace(uid)``."""
    md = pod.get("metadata") or {}
    return f"{md.get('name', '')}_{md.get('namespace') or 'default'}({md.get('uid', '')})"


def image_user(image_config: dict[str, Any]) -> tuple[int | None, str]:
    """containerd's ``getUserFromImage``: (uid, "") for a numeric ``User``, (None, name) for a
    name, (None, "") when the image sets none; a ``:group`` part is ignored."""
    user = str(image_config.get("User") or "").split(":")[0]
    if not user:
        return None, ""
    try:
        return int(user), ""
    except ValueError:
        return None, user


def verify_run_as_non_root(pod: dict[str, Any], container: str, eff: dict[str, Any],
                           image_uid: int | None, image_username: str) -> str | None:
    """``verifyRunAsNonRoot``: the error message, or None when the container may run."""
    if not eff.get("runAsNonRoot"):
        return None
    desc = pod_desc(pod)
    if eff.get("runAsUser") is not None:
        if int(eff["runAsUser"]) == 0:
            return f'container\'s runAsUser breaks non-root policy (pod: "{desc}", container: {container})'
        return None
    if image_uid is None and not image_username:
        image_uid = 0  # the kubelet's getImageUser: an image without a user runs as root
    if image_uid == 0:
        return f'container has runAsNonRoot and image will run as root (pod: "{desc}", container: {container})'
    if image_uid is None:
        return (f"container has runAsNonRoot and image has non-numeric user ({image_username}), cannot verify "
                f'user is non-root (pod: "{desc}", container: {container})')
    return None


# -- the process user (containerd's oci.WithUser over the image's files) ----------------------
@dataclass
class Passwd:
    users: list[tuple[str, int, int]] = field(default_factory=list)  # (name, uid, gid)
    groups: list[tuple[str, int, list[str]]] = field(default_factory=list)  # (name, gid, members)

    @classmethod
    def parse(cls, passwd: str, group: str) -> "Passwd":
        out = cls()
        for line in passwd.splitlines():
            f = line.split(":")
            if len(f) >= 4 and f[2].isdigit() and f[3].isdigit():
                out.users.append((f[0], int(f[2]), int(f[3])))
        for line in group.splitlines():
            f = line.split(":")
            if len(f) >= 3 and f[2].isdigit():
                members = [m for m in (f[3].split(",") if len(f) > 3 else []) if m]
                out.groups.append((f[0], int(f[2]), members))
        return out

    @classmethod
    def of_rootfs(cls, rootfs: Path) -> "Passwd":
        """The image's files (blocking); a missing file or one that is a link reads empty."""
        def read(rel: str) -> str:
            p = rootfs / rel
            try:
                return "" if p.is_symlink() else p.read_text(errors="replace")
            except OSError:
                return ""
        return cls.parse(read("etc/passwd"), read("etc/group"))


class UserError(Exception):
    pass


def process_user(user: str, db: Passwd, supplemental: list[int]) -> tuple[int, int, list[int]]:
    """(uid, gid, additional gids) for a user string ``user[:group]`` (names or numbers), as
    containerd resolves it: a number not in passwd gets gid 0, a name must be in passwd, the
    user's groups from /etc/group and the primary gid join the additional gids, then the
    pod's supplemental groups."""
    u, _, g = user.partition(":")
    username = ""
    if not u or u.isdigit():  # no user: root, the runtime's default
        uid = int(u or 0)
        hit = next((x for x in db.users if x[1] == uid), None)
        gid = hit[2] if hit else 0
        username = hit[0] if hit else ""
    else:
        hit = next((x for x in db.users if x[0] == u), None)
        if hit is None:
            raise UserError(f"unable to find user {u}: no matching entries in passwd file")
        username, uid, gid = hit
    if g:
        if g.isdigit():
            gid = int(g)
        else:
            grp = next((x for x in db.groups if x[0] == g), None)
            if grp is None:
                raise UserError(f"unable to find group {g}: no matching entries in group file")
            gid = grp[1]
    extra = [x[1] for x in db.groups if username and x[0] != username and username in x[2]]
    gids = [gid] + [x for x in extra if x != gid]
    for s in supplemental:
        if s not in gids:
            gids.append(s)
    return uid, gid, gids


def user_string(eff: dict[str, Any], image_config: dict[str, Any]) -> str:
    """What containerd is asked to run as: runAsUser[:runAsGroup], else the image's user
    (with runAsGroup replacing its group when set)."""
    uid, gid = eff.get("runAsUser"), eff.get("runAsGroup")
    if uid is not None:
        return f"{int(uid)}" + (f":{int(gid)}" if gid is not None else "")
    img = str(image_config.get("User") or "")
    if gid is not None:
        return f"{img.split(':')[0] or '0'}:{int(gid)}"
    return img


def supplemental_groups(pod_sc: dict[str, Any] | None) -> list[int]:
    """fsGroup first, then supplementalGroups (the kubelet's order)."""
    psc = pod_sc or {}
    out = [int(psc["fsGroup"])] if psc.get("fsGroup") is not None else []
    return out + [int(g) for g in psc.get("supplementalGroups") or []]


def fs_user_from(pod: dict[str, Any]) -> int | None:
    """``volumeutil.FsUserFrom``: the runAsUser every init and regular container runs as
    (container's, else the pod's); None when one sets none or two differ. Ephemeral containers
    do not count. The kubelet gives it to volume plugins as ``MounterArgs.FsUser``."""
    spec = pod.get("spec") or {}
    psc = spec.get("securityContext") or {}
    found: int | None = None
    for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        sc = (c.get("securityContext") if isinstance(c, dict) else None) or {}
        uid = sc.get("runAsUser") if sc.get("runAsUser") is not None else psc.get("runAsUser")
        if uid is None or (found is not None and int(uid) != found):
            return None
        found = int(uid)
    return found


def no_new_privileges(sc: dict[str, Any] | None) -> bool:
    """``AddNoNewPrivileges``: only an explicit ``allowPrivilegeEscalation: false`` sets it
    (the apiserver refuses it together with ``privileged`` or ``CAP_SYS_ADMIN``)."""
    ape = (sc or {}).get("allowPrivilegeEscalation")
    return ape is False


# -- seccomp ---------------------------------------------------------------------------------
@dataclass
class SeccompChoice:
    kind: str  # RuntimeDefault | Unconfined | Localhost
    path: Path | None = None  # Localhost: the profile file


def seccomp_choice(pod_sc: dict[str, Any] | None, sc: dict[str, Any] | None, seccomp_default: bool,
                   profile_root: Path) -> SeccompChoice:
    """``getSeccompProfile``: the container's field, else the pod's, else RuntimeDefault with
    ``--seccomp-default`` and Unconfined without. ``ValueError`` for Localhost without a file."""
    prof = (sc or {}).get("seccompProfile") or (pod_sc or {}).get("seccompProfile")
    if not prof:
        return SeccompChoice("RuntimeDefault" if seccomp_default else "Unconfined")
    kind = prof.get("type")
    if kind == "RuntimeDefault":
        return SeccompChoice(kind)
    if kind == "Localhost":
        rel = prof.get("localhostProfile") or ""
        if not rel:
            raise ValueError("localhostProfile must be set if seccompProfile type is Localhost.")
        return SeccompChoice(kind, Path(os.path.normpath(profile_root / rel)))
    return SeccompChoice("Unconfined")


# -- sysctls (the kubelet's admission) -------------------------------------------------------
SAFE_SYSCTLS = (
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range", "net.ipv4.ip_unprivileged_port_start", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
)
_NS_EXACT = {"kernel.sem": "IPC"}
_NS_PREFIX = {"kernel.shm": "IPC", "kernel.msg": "IPC", "fs.mqueue.": "IPC", "net.": "Net"}
_PATTERN = re.compile(r"^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\./])*(\*|[a-z0-9]([-_a-z0-9]*[a-z0-9])?\*?)$")


def normalize_name(name: str) -> str:
    """``sysctl.NormalizeName``: ``net/ipv4/conf/eno2.100/rp_filter`` → dotted form."""
    i = next((k for k, ch in enumerate(name) if ch in "./"), -1)
    if i < 0 or name[i] == ".":
        return name
    return name.replace(".", "\0").replace("/", ".").replace("\0", "/")


def _namespace(name: str) -> str | None:
    if name in _NS_EXACT:
        return _NS_EXACT[name]
    return next((ns for p, ns in _NS_PREFIX.items() if name.startswith(p)), None)


class SysctlAllowlist:
    """The safe sysctls plus ``--allowed-unsafe-sysctls`` patterns (``x.y`` or ``x.*``)."""

    def __init__(self, unsafe: list[str] | tuple[str, ...] = ()) -> None:
        self.exact: dict[str, str] = {}
        self.prefixes: dict[str, str] = {}
        for pat in list(SAFE_SYSCTLS) + [p for p in unsafe if p]:
            if len(pat) > 253 or not _PATTERN.match(pat):
                raise ValueError(f'sysctl "{pat}" must have at most 253 characters and match regex '
                                 f"{_PATTERN.pattern}")
            name = normalize_name(pat)
            prefix = name.endswith("*")
            key = name[:-1] if prefix else name
            ns = _namespace(key)
            if ns is None:
                raise ValueError(f'the sysctls "{key}" are not known to be namespaced')
            (self.prefixes if prefix else self.exact)[key] = ns

    def validate(self, name: str, host_net: bool = False, host_ipc: bool = False) -> str | None:
        name = normalize_name(name)
        ns = self.exact.get(name)
        if ns is None:
            ns = next((n for p, n in self.prefixes.items() if name.startswith(p)), None)
        if ns is None:
            return f'"{name}" not allowlisted'
        if (ns == "IPC" and host_ipc) or (ns == "Net" and host_net):
            return f'"{name}" not allowed with host {ns} enabled'
        return None

    def admit(self, pod: dict[str, Any]) -> str | None:
        """The kubelet's admission: the rejection message (reason ``SysctlForbidden``) or None."""
        spec = pod.get("spec") or {}
        for s in (spec.get("securityContext") or {}).get("sysctls") or []:
            err = self.validate(str(s.get("name", "")), bool(spec.get("hostNetwork")), bool(spec.get("hostIPC")))
            if err:
                return f"forbidden sysctl: {err}"
        return None


def sysctls(pod: dict[str, Any]) -> dict[str, str]:
    """The pod's sysctls as OCI ``linux.sysctl`` (dotted names)."""
    sc = ((pod.get("spec") or {}).get("securityContext") or {}).get("sysctls") or []
    return {normalize_name(str(s.get("name", ""))): str(s.get("value", "")) for s in sc if s.get("name")}
