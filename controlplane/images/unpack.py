"""Unpack image layers (tar, tar+gzip) into a root filesystem, honouring OCI whiteouts.

``.wh.<name>`` deletes ``<name>`` from the layers below; ``.wh..wh..opq`` empties its directory
of what the layers below put there (entries of the same layer stay). Paths escaping the root are
refused (tarfile's ``tar`` filter). Used by ``store.py`` when it materialises a rootfs.
"""

from __future__ import annotations

import os
import shutil
import tarfile
from pathlib import Path

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
LAYER_TYPES = {
    "application/vnd.oci.image.layer.v1.tar": "r:",
    "application/vnd.oci.image.layer.v1.tar+gzip": "r:gz",
    "application/vnd.docker.image.rootfs.diff.tar.gzip": "r:gz",
    "application/vnd.docker.image.rootfs.diff.tar": "r:",
}


class UnpackError(Exception):
    pass


def _remove(p: Path) -> None:
    if p.is_symlink() or p.is_file():
        p.unlink()
    elif p.is_dir():
        shutil.rmtree(p)


def apply_layer(layer: Path, media_type: str, root: Path) -> None:
    mode = LAYER_TYPES.get(media_type)
    if mode is None:
        raise UnpackError(f"unsupported layer media type {media_type}")
    created: set[str] = set()
    try:
        with tarfile.open(layer, mode) as tf:
            for m in tf:
                name = os.path.normpath(m.name.lstrip("/"))
                if name.startswith("..") or name == ".":
                    if name == ".":
                        continue
                    raise UnpackError(f"layer entry escapes the root: {m.name}")
                parent, base = os.path.split(name)
                if base == OPAQUE:
                    d = root / parent
                    if d.is_dir():
                        for child in d.iterdir():
                            rel = os.path.join(parent, child.name) if parent else child.name
                            if rel not in created:
                                _remove(child)
                    continue
                if base.startswith(WHITEOUT):
                    target = root / parent / base[len(WHITEOUT):]
                    if target.exists() or target.is_symlink():
                        _remove(target)
                    continue
                dest = root / name
                if (dest.exists() or dest.is_symlink()) and not (m.isdir() and dest.is_dir() and not dest.is_symlink()):
                    _remove(dest)
                m.name = name
                tf.extract(m, root, set_attrs=True, numeric_owner=True, filter="tar")
                created.add(name)
    except (tarfile.TarError, OSError, EOFError) as e:
        raise UnpackError(f"unpacking {layer.name}: {e}") from e
