"""Image policy for the agent: ``imagePullPolicy`` Always / IfNotPresent / Never, pull
de-duplication, ``ErrImagePull`` then ``ImagePullBackOff`` (10 s doubling to 5 min per image),
and GC when the image disk passes a high-water mark. Neighbours: ``controlplane.agent`` calls
``ensure``; ``puller.py`` pulls; ``store.py`` caches.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controlplane.images import reference
from controlplane.images.puller import PullError, Puller
from controlplane.images.store import ImageRecord, ImageStore
from controlplane.log import get_logger

log = get_logger(__name__)


class ImageError(Exception):
    """``reason`` is what the container status shows (ErrImagePull, ImagePullBackOff, …)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass
class Backoff:
    initial: float = 10.0
    cap: float = 300.0
    failures: int = 0
    next_try: float = 0.0
    last_error: str = ""

    def fail(self, now: float, message: str) -> None:
        self.failures += 1
        self.next_try = now + min(self.cap, self.initial * 2 ** (self.failures - 1))
        self.last_error = message


def default_policy(image: str) -> str:
    """Kubernetes' default: Always for ``:latest`` or no tag, else IfNotPresent."""
    try:
        ref = reference.parse(image)
    except reference.InvalidReference:
        return "IfNotPresent"
    return "Always" if ref.digest is None and ref.tag == "latest" else "IfNotPresent"


class ImageManager:
    def __init__(self, root: Path, mirrors: reference.Mirrors, clock: Callable[[], float] = time.monotonic,
                 backoff_initial: float = 10.0, backoff_cap: float = 300.0, ssl: Any = None) -> None:
        self.store = ImageStore(root)
        self.puller = Puller(self.store, mirrors, ssl=ssl)
        self.clock = clock
        self.backoff_initial = backoff_initial
        self.backoff_cap = backoff_cap
        self._backoff: dict[str, Backoff] = {}
        self._inflight: dict[str, asyncio.Task] = {}
        self._fresh: dict[str, float] = {}  # ref -> when an Always pull last succeeded

    def present(self, image: str, policy: str | None = None, always_ttl: float = 0.0) -> bool:
        """Whether :meth:`ensure` would answer from the store without pulling (the kubelet's
        "already present on machine" case)."""
        try:
            key = str(reference.parse(image))
        except reference.InvalidReference:
            return False
        policy = policy or default_policy(image)
        if self.store.get(key) is None:
            return False
        return policy in ("Never", "IfNotPresent") or bool(
            always_ttl and self.clock() - self._fresh.get(key, -1e18) < always_ttl)

    async def ensure(self, image: str, policy: str | None = None, always_ttl: float = 0.0) -> tuple[ImageRecord, Path]:
        """The image's record and rootfs, pulling per ``policy``; raises ``ImageError``."""
        try:
            ref = reference.parse(image)
        except reference.InvalidReference as e:
            raise ImageError("InvalidImageName", str(e)) from e
        key = str(ref)
        policy = policy or default_policy(image)
        rec = self.store.get(key)
        if policy == "Never":
            if rec is None:
                raise ImageError("ErrImageNeverPull",
                                 f'Container image "{image}" is not present with pull policy of Never')
            return rec, self.store.rootfs_path(rec.id)
        if rec is not None and (policy == "IfNotPresent" or
                                (always_ttl and self.clock() - self._fresh.get(key, -1e18) < always_ttl)):
            self.store.touch(key)
            return rec, self.store.rootfs_path(rec.id)
        bo = self._backoff.get(key)
        if bo is not None and self.clock() < bo.next_try:
            raise ImageError("ImagePullBackOff", f'Back-off pulling image "{image}": {bo.last_error}')
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(self.puller.pull(ref))
            self._inflight[key] = task
            task.add_done_callback(lambda _t, k=key: self._inflight.pop(k, None))
        try:
            rec = await asyncio.shield(task)
        except PullError as e:
            b = self._backoff.setdefault(key, Backoff(self.backoff_initial, self.backoff_cap))
            if b.next_try <= self.clock():
                b.fail(self.clock(), str(e))
            raise ImageError("ErrImagePull", str(e)) from e
        self._backoff.pop(key, None)
        rec.last_used = time.time()
        self.store.put(rec)
        self._fresh[key] = self.clock()
        return rec, self.store.rootfs_path(rec.id)

    def gc_if_needed(self, in_use: set[str], high_pct: float = 85.0, low_pct: float = 80.0) -> list[str]:
        """kubelet's image GC: above ``high_pct`` disk use, free unused images down to ``low_pct``."""
        import shutil

        du = shutil.disk_usage(self.store.root)
        used_pct = 100.0 * (du.total - du.free) / du.total
        if used_pct < high_pct:
            return []
        to_free = int((used_pct - low_pct) / 100.0 * du.total)
        removed = self.store.gc(in_use, to_free)
        log.info("image gc", used_pct=round(used_pct, 1), removed=removed)
        return removed
