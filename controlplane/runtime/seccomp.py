"""Seccomp profiles in the containers/common format turned into the OCI ``linux.seccomp`` runc
reads (pure apart from ``load_profile``; unit-tested).

The RuntimeDefault profile is ``/usr/share/containers/seccomp.json`` (Debian's
golang-github-containers-common, installed with skopeo), the one CRI-O and Podman apply. Its
format is Docker's: syscall entries carry ``includes``/``excludes`` (``caps``, ``arches``,
``minKernel``) and an ``archMap``. ``to_oci`` is a transcription of containers/common's
``pkg/seccomp.setupSeccomp`` (written by hand: no Python library does it): entries are kept
or dropped against the container's bounding capabilities, the host's architecture and kernel,
the host's ``archMap`` entry becomes ``architectures``, ``defaultAction``/``defaultErrnoRet``
are kept and arguments become OCI ``args``. An OCI-format profile (a ``Localhost`` one, as
containerd reads it) passes through the same function unchanged in substance.
Neighbours: ``oci.build_config`` calls ``to_oci``; ``agent/containers.py`` loads and checks.
"""

from __future__ import annotations

import json
import os
import platform
import re
from pathlib import Path
from typing import Any

DEFAULT_PROFILE = Path("/usr/share/containers/seccomp.json")

# Go's GOARCH names (what profiles' ``arches`` use) for ``uname -m``, and libseccomp's arch
# for each (containers/common's ``nativeToSeccomp``)
_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "i386": "386",
           "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64", "mips64": "mips64"}
NATIVE_TO_SECCOMP = {
    "386": "SCMP_ARCH_X86", "amd64": "SCMP_ARCH_X86_64", "arm": "SCMP_ARCH_ARM", "arm64": "SCMP_ARCH_AARCH64",
    "mips": "SCMP_ARCH_MIPS", "mips64": "SCMP_ARCH_MIPS64", "mips64n32": "SCMP_ARCH_MIPS64N32",
    "mipsel": "SCMP_ARCH_MIPSEL", "mipsel64": "SCMP_ARCH_MIPSEL64", "mipsel64n32": "SCMP_ARCH_MIPSEL64N32",
    "ppc": "SCMP_ARCH_PPC", "ppc64": "SCMP_ARCH_PPC64", "ppc64le": "SCMP_ARCH_PPC64LE",
    "riscv64": "SCMP_ARCH_RISCV64", "s390": "SCMP_ARCH_S390", "s390x": "SCMP_ARCH_S390X",
}


class SeccompError(ValueError):
    """A profile that cannot be used (containers/common's errors, same words)."""


def native_arch() -> str:
    m = platform.machine()
    return _GOARCH.get(m, m)


def kernel_version(release: str | None = None) -> tuple[int, int]:
    """``major.minor`` of the running kernel (``uname -r``)."""
    m = re.match(r"(\d+)\.(\d+)", release if release is not None else os.uname().release)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def _kernel_ge(want: str, have: tuple[int, int]) -> bool:
    m = re.fullmatch(r"(\d+)\.(\d+)", want.strip())
    if not m:
        raise SeccompError(f"invalid kernel version: {want}")
    return have >= (int(m.group(1)), int(m.group(2)))


def check(profile: Any) -> None:
    """Refuse what ``to_oci`` cannot convert, before any container is created."""
    if not isinstance(profile, dict):
        raise SeccompError("decoding seccomp profile failed: not a JSON object")
    if profile.get("architectures") and profile.get("archMap"):
        raise SeccompError("both 'architectures' and 'archMap' are specified in the seccomp profile, "
                           "use either 'architectures' or 'archMap'")
    for call in profile.get("syscalls") or []:
        if not isinstance(call, dict):
            raise SeccompError("decoding seccomp profile failed: a syscall entry is not an object")
        if call.get("name") and call.get("names"):
            raise SeccompError("'name' and 'names' were specified in the seccomp profile, use either 'name' or 'names'")
        for cond in (call.get("includes") or {}, call.get("excludes") or {}):
            if cond.get("minKernel"):
                _kernel_ge(str(cond["minKernel"]), (0, 0))


def _arg(a: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"index": int(a.get("index", 0)), "value": int(a.get("value", 0))}
    if a.get("valueTwo"):
        out["valueTwo"] = int(a["valueTwo"])
    out["op"] = a.get("op", "")
    return out


def _keep(call: dict[str, Any], caps: set[str], arch: str, kernel: tuple[int, int]) -> bool:
    exc, inc = call.get("excludes") or {}, call.get("includes") or {}
    if arch in (exc.get("arches") or []):
        return False
    if any(c in caps for c in exc.get("caps") or []):
        return False
    if exc.get("minKernel") and _kernel_ge(str(exc["minKernel"]), kernel):
        return False
    if inc.get("arches") and arch not in inc["arches"]:
        return False
    if any(c not in caps for c in inc.get("caps") or []):
        return False
    if inc.get("minKernel") and not _kernel_ge(str(inc["minKernel"]), kernel):
        return False
    return True


def to_oci(profile: dict[str, Any], caps: list[str], arch: str | None = None,
           kernel: tuple[int, int] | None = None) -> dict[str, Any] | None:
    """containers/common's ``setupSeccomp``: the OCI ``linux.seccomp`` for a container whose
    bounding set is ``caps``, on ``arch`` (GOARCH) with ``kernel`` (None: no seccomp)."""
    check(profile)
    if not profile.get("defaultAction") and not profile.get("syscalls"):
        return None  # nothing to enforce: seccomp disabled, as containers/common decides
    arch = arch or native_arch()
    kernel = kernel or kernel_version()
    out: dict[str, Any] = {"defaultAction": profile.get("defaultAction", "")}
    if profile.get("defaultErrnoRet") is not None:
        out["defaultErrnoRet"] = int(profile["defaultErrnoRet"])
    archs = [str(a) for a in profile.get("architectures") or []]
    native = NATIVE_TO_SECCOMP.get(arch)
    for entry in profile.get("archMap") or []:
        if native is not None and entry.get("architecture") == native:
            archs = [native] + [str(s) for s in entry.get("subArchitectures") or []]
            break
    if archs:
        out["architectures"] = archs
    for key in ("flags", "listenerPath", "listenerMetadata"):
        if profile.get(key):
            out[key] = profile[key]
    capset = set(caps)
    syscalls = []
    for call in profile.get("syscalls") or []:
        if not _keep(call, capset, arch, kernel):
            continue
        sc: dict[str, Any] = {"names": [call["name"]] if call.get("name") else list(call.get("names") or []),
                              "action": call.get("action", "")}
        if call.get("errnoRet") is not None:
            sc["errnoRet"] = int(call["errnoRet"])
        args = [_arg(a) for a in call.get("args") or []]
        if args:
            sc["args"] = args
        syscalls.append(sc)
    if syscalls:
        out["syscalls"] = syscalls
    return out


def load_profile(path: Path) -> dict[str, Any]:
    """Read a profile file (blocking: call it in a thread). ``OSError`` when it is missing,
    ``SeccompError`` when it is not a usable profile."""
    raw = path.read_bytes()
    try:
        profile = json.loads(raw)
    except ValueError as e:
        raise SeccompError(f'decoding seccomp profile failed "{path}": {e}') from e
    check(profile)
    return profile
