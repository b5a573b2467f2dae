"""Security-context and mount-path rules of Kubernetes' pod validation that the node agent
relies on: ``validateSeccompProfileField`` (pod and container), ``ValidateSecurityContext``'s
``allowPrivilegeEscalation`` rules, and the ``subPath``/``subPathExpr`` checks of
``ValidateVolumeMounts`` (relative, no ``..``, not both). Caller: ``pods.py``.
"""

from __future__ import annotations

import posixpath
from typing import Any

from controlplane.apiserver.meta.names import Errors

_SECCOMP_TYPES = ("Localhost", "RuntimeDefault", "Unconfined")


def local_descending_path(errs: Errors, path: str, value: str) -> None:
    """``validateLocalDescendingPath``."""
    if posixpath.isabs(value):
        errs.invalid(path, value, "must be a relative path")
    if ".." in value.replace("\\", "/").split("/"):
        errs.invalid(path, value, "must not contain '..'")


def seccomp_profile(errs: Errors, path: str, sp: Any) -> None:
    if not isinstance(sp, dict):
        return
    t = sp.get("type")
    if not t:
        errs.required(f"{path}.type", "type is required when seccompProfile is set")
    elif t not in _SECCOMP_TYPES:
        errs.not_supported(f"{path}.type", t, _SECCOMP_TYPES)
    lp = sp.get("localhostProfile")
    if t == "Localhost":
        if lp is None:
            errs.required(f"{path}.localhostProfile", "must be set when seccomp type is Localhost")
        elif isinstance(lp, str):
            local_descending_path(errs, f"{path}.localhostProfile", lp)
    elif lp is not None:
        errs.invalid(f"{path}.localhostProfile", sp, "can only be set when seccomp type is Localhost")


def container_security_context(errs: Errors, path: str, sc: Any) -> None:
    if not isinstance(sc, dict):
        return
    seccomp_profile(errs, f"{path}.seccompProfile", sc.get("seccompProfile"))
    if sc.get("allowPrivilegeEscalation") is False:
        if sc.get("privileged") is True:
            errs.invalid(path, sc, "cannot set `allowPrivilegeEscalation` to false and `privileged` to true")
        for cap in (sc.get("capabilities") or {}).get("add") or []:
            if cap == "CAP_SYS_ADMIN":
                errs.invalid(path, sc, "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN")


def pod_security_context(errs: Errors, path: str, psc: Any) -> None:
    if isinstance(psc, dict):
        seccomp_profile(errs, f"{path}.seccompProfile", psc.get("seccompProfile"))


def mount_sub_paths(errs: Errors, path: str, m: dict[str, Any]) -> None:
    sub, expr = m.get("subPath"), m.get("subPathExpr")
    if isinstance(sub, str) and sub:
        local_descending_path(errs, f"{path}.subPath", sub)
    if isinstance(expr, str) and expr:
        if sub:
            errs.invalid(f"{path}.subPathExpr", expr, "subPathExpr and subPath are mutually exclusive")
        local_descending_path(errs, f"{path}.subPathExpr", expr)
