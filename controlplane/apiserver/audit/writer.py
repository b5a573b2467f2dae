"""The audit log backend (kube-apiserver's ``--audit-log-path``): one JSON ``Event`` per line,
rotated by size like lumberjack does for kube-apiserver (``--audit-log-maxsize`` MB, the
rotated file renamed ``<name>-<UTC timestamp>.<ext>``, at most ``--audit-log-maxbackup``
kept, none older than ``--audit-log-maxage`` days).

Events are queued in memory and written by a background task every ``flush_interval``
(in a thread, so the event loop never waits on the disk), and at stop. Several apiserver
worker processes may share one file: each flush takes an ``flock`` on ``<path>.lock``,
rotates if the file is over the limit, and appends with ``O_APPEND``, so lines never
interleave and a rotation happens once. Neighbours: ``policy``, ``event``.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any

import ujson

from controlplane.log import get_logger

log = get_logger(__name__)


class AuditLogWriter:
    def __init__(self, path: str | Path, *, max_size_mb: float = 100, max_backups: int = 10,
                 max_age_days: float = 0, flush_interval: float = 0.1, max_queue: int = 100_000) -> None:
        self.path = Path(path)
        self.max_bytes = int(max_size_mb * 1024 * 1024)
        self.max_backups = max_backups
        self.max_age_days = max_age_days
        self.flush_interval = flush_interval
        self.max_queue = max_queue
        self._queue: list[bytes] = []
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, event: dict[str, Any]) -> None:
        if len(self._queue) >= self.max_queue:
            self.dropped += 1
            return
        try:
            line = ujson.dumps(event, ensure_ascii=False, escape_forward_slashes=False).encode()
        except (TypeError, OverflowError, ValueError):
            line = json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()
        self._queue.append(line + b"\n")

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        await asyncio.to_thread(self.flush)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval)
            if self._queue:
                try:
                    await asyncio.to_thread(self.flush)
                except OSError as e:
                    log.warning("audit log write failed", path=str(self.path), error=str(e))

    def flush(self) -> None:
        lines, self._queue = self._queue, []
        if not lines:
            return
        data = b"".join(lines)
        lock = os.open(str(self.path) + ".lock", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                size = self.path.stat().st_size
            except FileNotFoundError:
                size = 0
            if self.max_bytes and size and size + len(data) > self.max_bytes:
                self._rotate()
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
            os.close(lock)

    def _rotate(self) -> None:
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H-%M-%S.%f")[:-3]
        stem, ext = self.path.stem, self.path.suffix
        target = self.path.with_name(f"{stem}-{stamp}{ext}")
        os.replace(self.path, target)
        backups = sorted(self.path.parent.glob(f"{stem}-*{ext}"))
        cutoff = time.time() - self.max_age_days * 86400 if self.max_age_days else None
        keep = backups[-self.max_backups:] if self.max_backups else backups
        for b in backups:
            if b not in keep or (cutoff is not None and b.stat().st_mtime < cutoff):
                try:
                    b.unlink()
                except FileNotFoundError:
                    pass
