"""``DATA_DIR/logs/scheduling.log``: one JSON line per scheduling decision (the
``SchedulingDecision`` record of ``decisions``), apart from the component logs.

Why a writer of its own: the scheduler decides hundreds of pods per second; a line is queued
in memory (``write`` is a list append) and a background task writes the queue out every
``FLUSH_S`` in a worker thread (no file I/O on the event loop). The file is rotated at
``max_bytes`` (to ``scheduling.log.1``, one generation kept), as the component logs' size is
bounded by their own rotation. ``start(stop)`` runs the flusher until ``stop``, then writes
what is left.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import ujson

from controlplane.log import get_logger

log = get_logger(__name__)

FLUSH_S = 0.2
MAX_BYTES = 256 * 1024 * 1024
MAX_QUEUED = 100_000  # lines; past that (the disk is stuck) new lines are dropped and counted


def encode(record: dict[str, Any]) -> str:
    return ujson.dumps(record, ensure_ascii=False, escape_forward_slashes=False)


class DecisionLog:
    def __init__(self, path: Path | str, max_bytes: int = MAX_BYTES) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self._lines: list[str] = []
        self.written = 0
        self.dropped = 0

    def write(self, record: dict[str, Any]) -> str:
        """Queue the record; returns its JSON line (the scheduler sends the same bytes to the API)."""
        line = encode(record)
        self.write_line(line)
        return line

    def write_line(self, line: str) -> None:
        if len(self._lines) >= MAX_QUEUED:
            self.dropped += 1
            return
        self._lines.append(line)

    def _append(self, lines: list[str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            if self.path.stat().st_size >= self.max_bytes:
                os.replace(self.path, self.path.with_name(self.path.name + ".1"))
        except FileNotFoundError:
            pass
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")

    async def flush(self) -> None:
        if not self._lines:
            return
        lines, self._lines = self._lines, []
        try:
            await asyncio.to_thread(self._append, lines)
            self.written += len(lines)
        except OSError as e:
            self.dropped += len(lines)
            log.warning("scheduling log write failed", path=str(self.path), error=str(e), lines=len(lines))

    async def start(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                try:
                    await asyncio.wait_for(stop.wait(), FLUSH_S)
                except asyncio.TimeoutError:
                    pass
                await self.flush()
        finally:
            await asyncio.shield(self.flush())
