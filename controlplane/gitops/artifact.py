"""Artifacts: a fetched revision's tree as a reproducible ``.tar.gz`` with a sha256 digest,
kept under ``DATA_DIR/gitops/artifacts``, and unpacked (once per digest) for the syncs.

The tarball is byte-for-byte reproducible (sorted entries, zero mtimes and owners, normalised
modes, gzip without a timestamp), so the digest changes exactly when the content that reaches
the cluster changes (including through ``ignore``/``includePaths``). Paths are filtered with
gitignore semantics (PyPI ``pathspec``). Unpacking uses tarfile's ``data`` filter (no absolute
paths, no escaping links). Neighbours: ``git.py`` (writes the raw tar), ``source.py``, ``sync.py``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import tarfile
from pathlib import Path

import pathspec

# Left out of every artifact (Flux's defaults, shortened): VCS and CI files.
DEFAULT_IGNORE = [".git/", ".gitignore", ".gitmodules", ".gitattributes", ".github/", ".gitlab-ci.yml"]


def _spec(lines: list[str]) -> pathspec.PathSpec:
    return pathspec.PathSpec.from_lines("gitwildmatch", [ln for ln in lines if ln.strip() and not ln.startswith("#")])


def pack(raw_tar: Path, dest: Path, *, ignore: str = "", include: list[str] | None = None) -> tuple[str, int]:
    """Filter ``raw_tar`` (git archive output) into the reproducible ``dest`` tar.gz.
    Returns ``(sha256:<hex>, size in bytes)``."""
    ignored = _spec(DEFAULT_IGNORE + ignore.splitlines())
    included = _spec(include) if include else None
    buf = io.BytesIO()
    with tarfile.open(raw_tar, "r:") as src, tarfile.open(fileobj=buf, mode="w:", format=tarfile.PAX_FORMAT) as out:
        members = [m for m in src.getmembers() if m.isfile() or m.issym()]
        for m in sorted(members, key=lambda m: m.name):
            name = m.name.removeprefix("./").lstrip("/")
            if not name or ignored.match_file(name) or (included is not None and not included.match_file(name)):
                continue
            info = tarfile.TarInfo(name)
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if m.issym():
                info.type = tarfile.SYMTYPE
                info.linkname = m.linkname
                info.mode = 0o777
                out.addfile(info)
            else:
                info.size = m.size
                info.mode = 0o755 if m.mode & 0o111 else 0o644
                out.addfile(info, src.extractfile(m))
    data = gzip.compress(buf.getvalue(), compresslevel=6, mtime=0)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, dest)
    return "sha256:" + hashlib.sha256(data).hexdigest(), len(data)


def digest_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def unpack(artifact: Path, digest: str, work_root: Path) -> Path:
    """The artifact unpacked under ``work_root/<digest hex>`` (reused when already there);
    raises ``ValueError`` when the file does not match ``digest``."""
    dest = work_root / digest.removeprefix("sha256:")
    if (dest / ".complete").exists():
        return dest
    if digest_of(artifact) != digest:
        raise ValueError(f"artifact {artifact} does not match its digest {digest}")
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with tarfile.open(artifact, "r:gz") as tf:
        tf.extractall(tmp, filter="data")
    (tmp / ".complete").touch()
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)
    return dest


def prune_dir(root: Path, keep: set[str]) -> None:
    """Remove entries of ``root`` whose names are not in ``keep`` (old artifacts / unpacked trees)."""
    if not root.exists():
        return
    for p in root.iterdir():
        if p.name not in keep:
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
