"""Layer unpacking: files, symlinks, whiteouts (.wh.) and opaque directories, path escapes."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from controlplane.images.unpack import UnpackError, apply_layer

GZ = "application/vnd.oci.image.layer.v1.tar+gzip"
TAR = "application/vnd.oci.image.layer.v1.tar"


def layer(tmp: Path, name: str, entries: list[tuple], gz: bool = True) -> Path:
    p = tmp / name
    with tarfile.open(p, "w:gz" if gz else "w") as tf:
        for e in entries:
            kind, path = e[0], e[1]
            ti = tarfile.TarInfo(path)
            if kind == "dir":
                ti.type = tarfile.DIRTYPE
                tf.addfile(ti)
            elif kind == "link":
                ti.type, ti.linkname = tarfile.SYMTYPE, e[2]
                tf.addfile(ti)
            else:
                data = e[2].encode()
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
    return p


def test_whiteouts_and_opaque(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    apply_layer(layer(tmp_path, "l1", [("dir", "etc"), ("file", "etc/a", "1"), ("file", "etc/b", "2"),
                                       ("dir", "opt"), ("file", "opt/old", "x"), ("link", "bin", "usr/bin")]), GZ, root)
    apply_layer(layer(tmp_path, "l2", [("file", "etc/.wh.a", ""), ("dir", "opt"), ("file", "opt/new", "y"),
                                       ("file", "opt/.wh..wh..opq", ""), ("file", "etc/b", "3")], gz=False), TAR, root)
    assert not (root / "etc" / "a").exists()
    assert (root / "etc" / "b").read_text() == "3"
    assert sorted(p.name for p in (root / "opt").iterdir()) == ["new"]
    assert (root / "bin").is_symlink() and str((root / "bin").readlink()) == "usr/bin"
    assert not any(p.name.startswith(".wh.") for p in root.rglob("*"))


@pytest.mark.parametrize("name", ["../escape", "a/../../escape"])
def test_escape_refused(tmp_path, name):
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(UnpackError):
        apply_layer(layer(tmp_path, "bad", [("file", name, "x")]), GZ, root)
    assert not (tmp_path / "escape").exists()


def test_unknown_media_type(tmp_path):
    with pytest.raises(UnpackError):
        apply_layer(layer(tmp_path, "l", []), "application/vnd.oci.image.layer.v1.tar+zstd", tmp_path)
