"""``fsGroup`` on the volumes the agent makes (emptyDir, configMap, secret, downwardAPI,
projected, local-path claims), as the kubelet's ``volume.SetVolumeOwnership``: every file and
directory becomes group-owned by the fsGroup, gains group read/write (read only for the
read-only kinds: configMap, secret, downwardAPI, projected) and directories the setgid and
execute bits; symlinks are chowned but not chmodded. ``fsGroupChangePolicy: OnRootMismatch``
skips the walk when the root already has the group, the permission bits and setgid. hostPath
and administrator-made volumes are never touched. Blocking: call in a thread.
Neighbours: ``podconfig.prepare_volumes`` (caller).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from controlplane.log import get_logger

log = get_logger(__name__)

RW_MASK = 0o660
RO_MASK = 0o440
EXEC_MASK = 0o110


def requires_change(root: Path, fs_group: int, readonly: bool) -> bool:
    """``requiresPermissionChange``: does the root differ from what the walk would make it?"""
    try:
        st = os.stat(root)
    except OSError:
        return True
    if st.st_gid != fs_group or not stat.S_ISDIR(st.st_mode):
        return True
    want = (RO_MASK if readonly else RW_MASK) | EXEC_MASK
    return (st.st_mode & want) != want or not st.st_mode & stat.S_ISGID


def _change(path: str, fs_group: int, readonly: bool) -> None:
    try:
        os.lchown(path, -1, fs_group)
    except OSError as e:
        log.warning("lchown failed", path=path, error=str(e))
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        return
    mask = RO_MASK if readonly else RW_MASK
    if stat.S_ISDIR(st.st_mode):
        mask |= stat.S_ISGID | EXEC_MASK
    try:
        os.chmod(path, stat.S_IMODE(st.st_mode) | mask)
    except OSError as e:
        log.warning("chmod failed", path=path, error=str(e))


def set_volume_ownership(root: Path, fs_group: int | None, policy: str | None, readonly: bool) -> bool:
    """Apply ``fs_group`` to ``root`` and below; returns whether it walked."""
    if fs_group is None:
        return False
    if policy == "OnRootMismatch" and not requires_change(root, fs_group, readonly):
        return False
    for dirpath, dirs, files in os.walk(root):
        _change(dirpath, fs_group, readonly)
        for name in files + [d for d in dirs if os.path.islink(os.path.join(dirpath, d))]:
            _change(os.path.join(dirpath, name), fs_group, readonly)
    return True
