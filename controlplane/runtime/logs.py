"""Container logs in the CRI format (``<RFC3339Nano> <stdout|stderr> <F|P> <text>``), rotated.

``LogWriter`` drains a container's stdout/stderr pipes (asyncio) into ``<n>.log`` beside the
container, rotating to ``<n>.log.1`` … when a file passes ``max_bytes``. ``read_log`` parses
those files back for the agent's log endpoint (``tail``, ``since``, ``timestamps``) and
``follow_log`` streams new lines. Neighbours: ``runc.py`` owns writers; ``agent.server`` reads.
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from controlplane.machinery.timestamps import parse_time, rfc3339nano

MAX_LINE = 16 * 1024


def format_line(stream: str, text: bytes, partial: bool, t: float | None = None) -> bytes:
    return f"{rfc3339nano(t)} {stream} {'P' if partial else 'F'} ".encode() + text + b"\n"


def parse_line(raw: bytes) -> tuple[float, str, bool, bytes] | None:
    """(time, stream, partial, text) of one CRI line (text without the newline)."""
    try:
        ts, stream, tag, text = raw.rstrip(b"\n").split(b" ", 3)
    except ValueError:
        parts = raw.rstrip(b"\n").split(b" ", 3)
        if len(parts) == 3:
            ts, stream, tag = parts
            text = b""
        else:
            return None
    return parse_time(ts.decode()), stream.decode(), tag == b"P", text


class LogWriter:
    """Drains pipes into one CRI log file, rotating it (``max_files`` kept)."""

    def __init__(self, path: Path, max_bytes: int = 10 * 1024 * 1024, max_files: int = 3) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.max_files = max_files
        path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(path, "ab", buffering=0)
        self._tasks: list[asyncio.Task] = []

    def attach(self, stream: str, fd: int) -> None:
        self._tasks.append(asyncio.get_running_loop().create_task(self._drain(stream, fd)))

    async def _drain(self, stream: str, fd: int) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=MAX_LINE * 2)
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", buffering=0))
        try:
            while True:
                try:
                    chunk = await reader.readuntil(b"\n")
                    self.write(stream, chunk[:-1], partial=False)
                except asyncio.IncompleteReadError as e:
                    if e.partial:
                        self.write(stream, e.partial, partial=False)
                    return
                except asyncio.LimitOverrunError as e:
                    chunk = await reader.readexactly(min(e.consumed, MAX_LINE) or MAX_LINE)
                    self.write(stream, chunk, partial=True)
        finally:
            transport.close()

    def write(self, stream: str, text: bytes, partial: bool) -> None:
        if self._f.closed:
            return
        self._f.write(format_line(stream, text, partial))
        if self._f.tell() >= self.max_bytes:
            self.rotate()

    def rotate(self) -> None:
        """``n.log`` → ``n.log.1`` → ``n.log.2`` …, keeping ``max_files - 1`` rotated files."""
        self._f.close()
        for k in range(self.max_files - 2, 0, -1):
            src = self.path.with_name(f"{self.path.name}.{k}")
            if src.exists():
                os.replace(src, self.path.with_name(f"{self.path.name}.{k + 1}"))
        if self.max_files > 1:
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink(missing_ok=True)
        self._f = open(self.path, "ab", buffering=0)

    async def wait_drained(self, timeout: float = 2.0) -> None:
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=timeout)

    async def close(self) -> None:
        for t in self._tasks:
            if not t.done():
                t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._f.close()


def log_files(path: Path) -> list[Path]:
    """Rotated files oldest first, then the live one."""
    rotated = [p for p in path.parent.glob(path.name + ".*") if p.suffix[1:].isdigit()]
    rotated.sort(key=lambda p: -int(p.suffix[1:]))
    return rotated + ([path] if path.exists() else [])


def render(entry: tuple[float, str, bool, bytes], timestamps: bool) -> bytes:
    t, _, partial, text = entry
    body = text if partial else text + b"\n"
    return (rfc3339nano(t).encode() + b" " + body) if timestamps else body


def read_log(path: Path, tail: int | None = None, since: float | None = None,
             timestamps: bool = False, limit_bytes: int | None = None) -> tuple[bytes, int]:
    """Lines of a container log; returns (bytes, offset of the live file read so far)."""
    entries: deque = deque(maxlen=tail if tail is not None and tail >= 0 else None)
    offset = 0
    for f in log_files(path):
        with open(f, "rb") as fh:
            for raw in fh:
                e = parse_line(raw)
                if e is None or (since is not None and e[0] < since):
                    continue
                entries.append(e)
            if f == path:
                offset = fh.tell()
    out = b"".join(render(e, timestamps) for e in entries)
    if limit_bytes is not None:
        out = out[:limit_bytes]
    return out, offset


async def follow_log(path: Path, offset: int, timestamps: bool, done: Callable[[], bool],
                     poll: float = 0.2) -> AsyncIterator[bytes]:
    """New lines after ``offset`` until ``done()`` and nothing more is written (rotation aware)."""
    ino = path.stat().st_ino if path.exists() else None
    buf = b""
    while True:
        try:
            st = path.stat()
        except FileNotFoundError:
            st = None
        if st is not None and ino is not None and st.st_ino != ino:
            offset, ino = 0, st.st_ino
        elif st is not None and ino is None:
            ino = st.st_ino
        data = b""
        if st is not None and st.st_size > offset:
            with open(path, "rb") as fh:
                fh.seek(offset)
                data = fh.read()
                offset = fh.tell()
        if data:
            buf += data
            *lines, buf = buf.split(b"\n")
            out = b""
            for raw in lines:
                e = parse_line(raw)
                if e is not None:
                    out += render(e, timestamps)
            if out:
                yield out
            continue
        if done():
            return
        await asyncio.sleep(poll)
