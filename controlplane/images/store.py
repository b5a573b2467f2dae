"""The content-addressed image cache shared by all pods of a node.

Layout under ``<root>``: ``blobs/sha256/<hex>`` (verified blobs), ``rootfs/<image-id-hex>/``
(unpacked root filesystems, one per image config digest, read-only lower layer for every
container of that image), ``images.json`` (reference → image record). ``gc`` removes images
no pod uses, least recently used first. Neighbours: ``puller.py`` writes, ``manager.py`` reads.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from controlplane.images.unpack import apply_layer


class DigestMismatch(Exception):
    pass


@dataclass
class ImageRecord:
    ref: str
    id: str  # config digest
    manifest: str
    layers: list[dict] = field(default_factory=list)  # [{"digest", "mediaType", "size"}]
    config: dict = field(default_factory=dict)  # the image config's "config" section
    size: int = 0
    last_used: float = 0.0


class ImageStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.blobs = self.root / "blobs" / "sha256"
        self.rootfs_dir = self.root / "rootfs"
        self.tmp = self.root / "tmp"
        for d in (self.blobs, self.rootfs_dir, self.tmp):
            d.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._images: dict[str, ImageRecord] = {}
        self._load()

    # -- records --------------------------------------------------------------------------
    def _load(self) -> None:
        try:
            data = json.loads((self.root / "images.json").read_text())
            self._images = {k: ImageRecord(**v) for k, v in data.items()}
        except (OSError, ValueError, TypeError):
            self._images = {}

    def _save(self) -> None:
        tmp = self.root / "images.json.tmp"
        tmp.write_text(json.dumps({k: asdict(v) for k, v in self._images.items()}))
        os.replace(tmp, self.root / "images.json")

    def get(self, ref: str) -> ImageRecord | None:
        rec = self._images.get(ref)
        if rec is not None and not (self.rootfs_path(rec.id) / ".complete").exists():
            return None
        return rec

    def put(self, rec: ImageRecord) -> None:
        with self._lock:
            self._images[rec.ref] = rec
            self._save()

    def touch(self, ref: str) -> None:
        with self._lock:
            if ref in self._images:
                self._images[ref].last_used = time.time()
                self._save()

    def list(self) -> list[ImageRecord]:
        return list(self._images.values())

    # -- blobs ------------------------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        algo, _, hexd = digest.partition(":")
        if algo != "sha256" or len(hexd) != 64:
            raise DigestMismatch(f"unsupported digest {digest}")
        return self.blobs / hexd

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).exists()

    def new_temp(self) -> tuple[int, Path]:
        fd, name = tempfile.mkstemp(dir=self.tmp)
        return fd, Path(name)

    def commit_blob(self, tmp: Path, digest: str, actual: str) -> Path:
        """Move a downloaded blob in place if its sha256 matches ``digest`` (else delete it)."""
        if actual != digest:
            tmp.unlink(missing_ok=True)
            raise DigestMismatch(f"blob digest mismatch: expected {digest}, got {actual}")
        dest = self.blob_path(digest)
        os.replace(tmp, dest)
        return dest

    # -- rootfs -----------------------------------------------------------------------------
    def rootfs_path(self, image_id: str) -> Path:
        return self.rootfs_dir / image_id.partition(":")[2]

    def materialize(self, rec: ImageRecord) -> Path:
        """Unpack the layers into ``rootfs/<id>`` once (blocking: call via to_thread)."""
        dest = self.rootfs_path(rec.id)
        if (dest / ".complete").exists():
            return dest
        work = Path(tempfile.mkdtemp(dir=self.tmp, prefix="unpack-"))
        try:
            for layer in rec.layers:
                apply_layer(self.blob_path(layer["digest"]), layer["mediaType"], work)
            for d in ("proc", "sys", "dev", "etc", "tmp"):
                (work / d).mkdir(exist_ok=True)
            (work / ".complete").touch()
            with self._lock:
                if (dest / ".complete").exists():
                    return dest
                if dest.exists():
                    shutil.rmtree(dest)
                os.replace(work, dest)
        finally:
            if work.exists():
                shutil.rmtree(work, ignore_errors=True)
        return dest

    # -- garbage collection ------------------------------------------------------------------
    def disk_usage(self) -> int:
        total = 0
        for dirpath, _, files in os.walk(self.root):
            for f in files:
                try:
                    total += os.lstat(os.path.join(dirpath, f)).st_size
                except OSError:
                    pass
        return total

    def gc(self, in_use: set[str], bytes_to_free: int) -> list[str]:
        """Remove unused images (LRU) until ``bytes_to_free`` is reached; returns removed refs."""
        removed: list[str] = []
        freed = 0
        with self._lock:
            candidates = sorted((r for r in self._images.values() if r.ref not in in_use and r.id not in in_use),
                                key=lambda r: r.last_used)
            for rec in candidates:
                if freed >= bytes_to_free:
                    break
                del self._images[rec.ref]
                removed.append(rec.ref)
                if not any(r.id == rec.id for r in self._images.values()):
                    shutil.rmtree(self.rootfs_path(rec.id), ignore_errors=True)
                    freed += rec.size
                live = {layer["digest"] for r in self._images.values() for layer in r.layers}
                live |= {r.id for r in self._images.values()}
                for d in [layer["digest"] for layer in rec.layers] + [rec.id]:
                    if d not in live:
                        p = self.blob_path(d)
                        if p.exists():
                            freed += p.stat().st_size
                            p.unlink()
            self._save()
        return removed
