"""Container logs in the CRI format (``<RFC3339Nano> <stdout|stderr> <F|P> <text>``), rotated.

Each container's ``conmon`` writes its stdout/stderr into ``<n>.log`` (the ``k8s-file`` log
driver: the CRI format); ``rotate_files`` shifts ``<n>.log`` to ``<n>.log.1`` … when the
runtime rotates it. ``read_log`` parses those files back for the agent's log endpoint
(``tail``, ``since``, ``timestamps``) and ``follow_log`` streams new lines (rotation aware).
``format_line`` writes the same format (tests, tools). Neighbours: ``runc.py`` rotates;
``agent.server`` reads.
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


def rotate_files(path: Path, max_files: int = 5) -> None:
    """``n.log`` -> ``n.log.1`` -> ``n.log.2`` ..., keeping ``max_files - 1`` rotated files (the
    kubelet's container log rotation; the writer, conmon, is then told to reopen ``n.log``)."""
    oldest = path.with_name(f"{path.name}.{max_files - 1}")
    oldest.unlink(missing_ok=True)
    for k in range(max_files - 2, 0, -1):
        src = path.with_name(f"{path.name}.{k}")
        if src.exists():
            os.replace(src, path.with_name(f"{path.name}.{k + 1}"))
    if max_files > 1 and path.exists():
        os.replace(path, path.with_name(f"{path.name}.1"))
    else:
        path.unlink(missing_ok=True)


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
